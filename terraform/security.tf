# Two security groups:
# - the load balancer's: clients from allowed_cidrs reach the listener ports;
#   it may send only to the tasks' ports;
# - the tasks': the same ports (and the metrics port, for health checks) from
#   the load balancer's group only. Referencing that group admits the
#   connections although they keep the client's source address (client IP
#   preservation). Out: HTTPS only (S3, ECR, Secrets Manager, CloudWatch
#   Logs), through a NAT gateway or VPC endpoints.

locals {
  # Listener port ranges clients reach, by name.
  listener_ranges = merge(
    { control = { from = var.control_port, to = var.control_port } },
    local.implicit_tls ? { implicit-tls = { from = var.implicit_tls_port, to = var.implicit_tls_port } } : {},
    { passive = { from = var.passive_port_first, to = local.passive_port_last } },
  )

  # Port ranges of the tasks the load balancer sends to (traffic and health checks).
  target_ranges = merge(
    { control = { from = var.container_control_port, to = var.container_control_port } },
    local.implicit_tls ? { implicit-tls = { from = var.container_implicit_tls_port, to = var.container_implicit_tls_port } } : {},
    { passive = { from = var.passive_port_first, to = local.passive_port_last } },
    var.metrics_port != null ? { metrics = { from = var.metrics_port, to = var.metrics_port } } : {},
  )

  client_rules = merge([
    for name, r in local.listener_ranges : {
      for cidr in var.allowed_cidrs : "${name} ${cidr}" => merge(r, { name = name, cidr = cidr })
    }
  ]...)
}

# --- Load balancer ------------------------------------------------------------

resource "aws_security_group" "nlb" {
  name        = "${var.name}-s3ftp-nlb"
  description = "s3ftp ${var.name} load balancer: FTP control and passive ports from the allowed networks"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-s3ftp-nlb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "nlb_clients" {
  for_each = local.client_rules

  security_group_id = aws_security_group.nlb.id
  description       = "FTP ${each.value.name} port(s) from ${each.value.cidr}"
  ip_protocol       = "tcp"
  from_port         = each.value.from
  to_port           = each.value.to
  cidr_ipv4         = each.value.cidr
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "nlb_to_tasks" {
  for_each = local.target_ranges

  security_group_id            = aws_security_group.nlb.id
  description                  = "To the s3ftp tasks: ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = each.value.from
  to_port                      = each.value.to
  referenced_security_group_id = aws_security_group.task.id
  tags                         = local.tags
}

# --- Tasks --------------------------------------------------------------------

resource "aws_security_group" "task" {
  name        = "${var.name}-s3ftp-task"
  description = "s3ftp ${var.name} tasks: FTP ports and health checks from the load balancer only; HTTPS out"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-s3ftp-task" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "task_from_nlb" {
  for_each = local.target_ranges

  security_group_id            = aws_security_group.task.id
  description                  = "From the load balancer: ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = each.value.from
  to_port                      = each.value.to
  referenced_security_group_id = aws_security_group.nlb.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "task_metrics" {
  for_each = var.metrics_port == null ? toset([]) : toset(var.metrics_allowed_cidrs)

  security_group_id = aws_security_group.task.id
  description       = "Metrics scrape from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = var.metrics_port
  to_port           = var.metrics_port
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "task_https" {
  security_group_id = aws_security_group.task.id
  description       = "HTTPS to S3, ECR, Secrets Manager and CloudWatch Logs (NAT gateway or VPC endpoints)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
  tags              = local.tags
}
