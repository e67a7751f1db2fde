# One Network Load Balancer; one TCP listener and one target group per port:
# the control port, the implicit FTPS port (optional) and every passive port.
# Target groups hold IP targets (Fargate awsvpc) and pass on the client's
# address (client IP preservation, or a PROXY v2 header with
# proxy_protocol = "all"), which the server checks: a passive data connection
# must come from the address of the control connection that asked for it.

locals {
  # Health checks. The passive ports listen only between PASV and the
  # client's connection, so no target group checks its own port: they ask the
  # metrics listener for HTTP /readyz, or without one open a TCP connection to
  # the control port. A target group sending PROXY headers sends one on its
  # health checks too, which the metrics listener does not read, so those
  # target groups only open a TCP connection to the metrics port.
  health_check_http = {
    protocol = "HTTP"
    port     = tostring(coalesce(var.metrics_port, var.container_control_port))
    path     = "/readyz"
    matcher  = "200"
  }
  health_check_tcp = {
    protocol = "TCP"
    port     = tostring(coalesce(var.metrics_port, var.container_control_port))
    path     = null
    matcher  = null
  }
  health_check_plain      = var.metrics_port != null ? local.health_check_http : local.health_check_tcp
  health_check_control    = local.proxy_on_control ? local.health_check_tcp : local.health_check_plain
  health_check_passive    = local.proxy_on_passive ? local.health_check_tcp : local.health_check_plain
  preserve_client_address = !local.proxy_on_passive
}

resource "aws_lb" "this" {
  # checkov:skip=CKV_AWS_91:Network Load Balancer access logs record TLS listeners only; every listener here is TCP (FTPS is end-to-end in the server), so they would stay empty. The server logs every session and transfer with the client address instead.
  name                             = "${var.name}-s3ftp"
  load_balancer_type               = "network"
  internal                         = var.internal
  security_groups                  = [aws_security_group.nlb.id]
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.deletion_protection
  tags                             = local.tags

  dynamic "subnet_mapping" {
    for_each = { for i, s in var.subnet_ids : tostring(i) => s }
    content {
      subnet_id     = subnet_mapping.value
      allocation_id = length(var.eip_allocation_ids) > 0 ? var.eip_allocation_ids[tonumber(subnet_mapping.key)] : null
    }
  }

  lifecycle {
    precondition {
      condition     = local.listener_count <= local.max_listeners_per_nlb
      error_message = "This needs ${local.listener_count} listeners (control, implicit FTPS, task_count * passive_ports_per_task); a Network Load Balancer has at most ${local.max_listeners_per_nlb}. Lower task_count or passive_ports_per_task."
    }
    precondition {
      condition     = length(distinct(local.listener_ports)) == length(local.listener_ports)
      error_message = "control_port, implicit_tls_port and the passive ports (passive_port_first ...) must all differ."
    }
    precondition {
      condition     = length(var.eip_allocation_ids) == 0 || length(var.eip_allocation_ids) == length(var.subnet_ids)
      error_message = "eip_allocation_ids: give one allocation ID per subnet of subnet_ids, or none."
    }
    precondition {
      condition     = length(var.eip_allocation_ids) == 0 || !var.internal
      error_message = "eip_allocation_ids: only an internet-facing load balancer (internal = false) takes Elastic IPs."
    }
  }
}

# --- Control --------------------------------------------------------------------

resource "aws_lb_target_group" "control" {
  name                 = "${var.name}-ctl-${var.container_control_port}"
  port                 = var.container_control_port
  protocol             = "TCP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  preserve_client_ip   = local.preserve_client_address
  proxy_protocol_v2    = local.proxy_on_control
  deregistration_delay = var.deregistration_delay
  tags                 = local.tags

  stickiness {
    type    = "source_ip"
    enabled = var.control_stickiness
  }

  health_check {
    enabled             = true
    protocol            = local.health_check_control.protocol
    port                = local.health_check_control.port
    path                = local.health_check_control.path
    matcher             = local.health_check_control.matcher
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  # A listener and an ECS service point at it: a replacement (another
  # container port) must exist before the old one can go.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "control" {
  load_balancer_arn = aws_lb.this.arn
  port              = var.control_port
  protocol          = "TCP"
  tags              = local.tags

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.control.arn
  }
}

# --- Implicit FTPS (optional) ------------------------------------------------------

resource "aws_lb_target_group" "implicit_tls" {
  count = local.implicit_tls ? 1 : 0

  name                 = "${var.name}-tls-${var.container_implicit_tls_port}"
  port                 = var.container_implicit_tls_port
  protocol             = "TCP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  preserve_client_ip   = local.preserve_client_address
  proxy_protocol_v2    = local.proxy_on_control
  deregistration_delay = var.deregistration_delay
  tags                 = local.tags

  stickiness {
    type    = "source_ip"
    enabled = var.control_stickiness
  }

  health_check {
    enabled             = true
    protocol            = local.health_check_control.protocol
    port                = local.health_check_control.port
    path                = local.health_check_control.path
    matcher             = local.health_check_control.matcher
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  # A listener and an ECS service point at it: a replacement (another
  # container port) must exist before the old one can go.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "implicit_tls" {
  count = local.implicit_tls ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = var.implicit_tls_port
  protocol          = "TCP"
  tags              = local.tags

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.implicit_tls[0].arn
  }
}

# --- Passive ports: one listener and one target group each ---------------------------
# Each target group holds the one task owning that port (see ecs.tf), so no
# stickiness is needed: the port itself names the task. PROXY headers only
# with proxy_protocol = "all" (S3FTP_PROXY_PROTOCOL=all reads them on data
# connections too).

resource "aws_lb_target_group" "passive" {
  for_each = local.passive_ports

  name                 = "${var.name}-p${each.key}"
  port                 = tonumber(each.key)
  protocol             = "TCP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  preserve_client_ip   = local.preserve_client_address
  proxy_protocol_v2    = local.proxy_on_passive
  deregistration_delay = var.deregistration_delay
  tags                 = merge(local.tags, { "s3ftp:task" = each.value })

  health_check {
    enabled             = true
    protocol            = local.health_check_passive.protocol
    port                = local.health_check_passive.port
    path                = local.health_check_passive.path
    matcher             = local.health_check_passive.matcher
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  # A listener and an ECS service point at it: a replacement (another
  # container port) must exist before the old one can go.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "passive" {
  for_each = local.passive_ports

  load_balancer_arn = aws_lb.this.arn
  port              = tonumber(each.key)
  protocol          = "TCP"
  tags              = local.tags

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.passive[each.key].arn
  }
}
