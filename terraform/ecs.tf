# An ECS cluster and one Fargate service per task ("slot"). Every slot runs
# the same image with its own S3FTP_PASV_PORTS and registers in the shared
# control target group (and implicit FTPS one) plus the target groups of its
# own passive ports: an ECS service registers in at most 5 target groups, and
# a passive port must lead to the task that announced it.

locals {
  container_name = "s3ftp"
  tls_dir        = "/run/s3ftp-tls"

  mount_uri = "s3://${var.bucket_name}${local.bucket_prefix == "" ? "" : "/${local.bucket_prefix}"}?region=${local.region}"

  # What every task gets; S3FTP_PASV_PORTS is added per slot, var.environment last.
  # S3FTP_USERS comes from Secrets Manager (container secrets, below).
  module_environment = merge(
    {
      S3FTP_LISTEN       = "0.0.0.0:${var.container_control_port}"
      S3FTP_PASV_ADDRESS = coalesce(var.pasv_address, aws_lb.this.dns_name)
      S3FTP_MOUNTS       = "/=${local.mount_uri}"
      S3FTP_LOG_FORMAT   = "json"
    },
    local.tls ? {
      S3FTP_TLS_CERT = "${local.tls_dir}/cert.pem"
      S3FTP_TLS_KEY  = "${local.tls_dir}/key.pem"
    } : {},
    local.implicit_tls ? {
      S3FTP_TLS_IMPLICIT_LISTEN = "0.0.0.0:${var.container_implicit_tls_port}"
    } : {},
    var.metrics_port != null ? {
      S3FTP_METRICS_LISTEN = "0.0.0.0:${var.metrics_port}"
    } : {},
    local.proxy_on_control ? {
      S3FTP_PROXY_PROTOCOL = var.proxy_protocol
    } : {},
    # With client IP preservation (off, control) the peer of a connection is
    # the client itself, so any peer may send the header: the tasks' security
    # group admits only the load balancer, whose header comes first. Without
    # it (all), the peers are the load balancer's addresses in its subnets.
    local.proxy_on_passive ? {
      S3FTP_PROXY_TRUSTED = join(",", sort(distinct([for s in data.aws_subnet.nlb : s.cidr_block])))
    } : {},
  )

  reserved_environment = concat(keys(local.module_environment), ["S3FTP_PASV_PORTS", "S3FTP_USERS"])

  # Seconds the server lets transfers finish after SIGTERM, plus a margin, as
  # the container's stop timeout (Fargate allows at most 120).
  shutdown_grace = try(tonumber(var.environment["S3FTP_SHUTDOWN_GRACE"]), 30)
  stop_timeout   = min(120, local.shutdown_grace + 15)

  # Ports the task listens on, besides its passive ports.
  fixed_container_ports = compact([
    tostring(var.container_control_port),
    local.implicit_tls ? tostring(var.container_implicit_tls_port) : "",
    var.metrics_port != null ? tostring(var.metrics_port) : "",
  ])

  all_container_ports = concat(local.fixed_container_ports, keys(local.passive_ports))

  log_configuration = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = aws_cloudwatch_log_group.this.name
      awslogs-region        = local.region
      awslogs-stream-prefix = "s3ftp"
      # A slow CloudWatch never blocks the server's writes to stderr.
      mode            = "non-blocking"
      max-buffer-size = "4m"
    }
  }

  # The server reads the certificate and key from files (S3FTP_TLS_CERT/KEY
  # are paths), and ECS hands secrets to containers only as environment
  # variables. This short-lived container receives the two PEM secrets and
  # writes them into a task-local volume the server mounts read-only. It runs
  # as root because Fargate creates that volume owned by root; it gives the
  # files to uid 10001 with mode 0400 and exits. The server starts only
  # after it succeeded.
  tls_files_script = <<-SH
    set -eu
    umask 0277
    printf '%s\n' "$TLS_CERTIFICATE_PEM" > ${local.tls_dir}/cert.pem
    printf '%s\n' "$TLS_PRIVATE_KEY_PEM" > ${local.tls_dir}/key.pem
    chown 10001 ${local.tls_dir}/cert.pem ${local.tls_dir}/key.pem
  SH

  tls_files_container = {
    name                   = "tls-files"
    image                  = var.image
    essential              = false
    user                   = "0"
    readonlyRootFilesystem = true
    entryPoint             = ["/bin/sh", "-c"]
    command                = [local.tls_files_script]
    secrets = [
      { name = "TLS_CERTIFICATE_PEM", valueFrom = coalesce(var.tls_certificate_secret_arn, "-") },
      { name = "TLS_PRIVATE_KEY_PEM", valueFrom = coalesce(var.tls_private_key_secret_arn, "-") },
    ]
    mountPoints = [{ sourceVolume = "tls", containerPath = local.tls_dir, readOnly = false }]
    linuxParameters = {
      # Everything but CHOWN (Fargate cannot add capabilities back).
      capabilities = {
        drop = ["AUDIT_WRITE", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]
      }
    }
    logConfiguration = local.log_configuration
  }
}

resource "aws_ecs_cluster" "this" {
  name = "${var.name}-s3ftp"
  tags = local.tags

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_task_definition" "this" {
  for_each = local.slots

  family                   = "${var.name}-s3ftp-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  tags                     = merge(local.tags, { "s3ftp:task" = each.key })

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  dynamic "volume" {
    for_each = local.tls ? ["tls"] : []
    content {
      name = volume.value
    }
  }

  container_definitions = jsonencode(concat(
    local.tls ? [local.tls_files_container] : [],
    [merge({
      name                   = local.container_name
      image                  = var.image
      essential              = true
      user                   = "10001"
      readonlyRootFilesystem = true
      stopTimeout            = local.stop_timeout

      portMappings = [
        for p in concat(local.fixed_container_ports, [for port, slot in local.passive_ports : port if slot == each.key]) :
        { containerPort = tonumber(p), protocol = "tcp" }
      ]

      environment = [
        for k, v in merge(
          local.module_environment,
          { S3FTP_PASV_PORTS = "${each.value.first_port}-${each.value.last_port}" },
          var.environment,
        ) : { name = k, value = v }
      ]

      secrets = [{ name = "S3FTP_USERS", valueFrom = var.users_secret_arn }]

      linuxParameters = {
        # The server binds unprivileged ports and needs no capability.
        capabilities = { drop = ["ALL"] }
      }

      logConfiguration = local.log_configuration
      },
      # With TLS: the files written by tls-files. (A for expression, not a
      # conditional, which would turn the object into a map of strings.)
      [for _ in local.tls ? ["tls"] : [] : {
        mountPoints = [{ sourceVolume = "tls", containerPath = local.tls_dir, readOnly = true }]
        dependsOn   = [{ containerName = "tls-files", condition = "SUCCESS" }]
      }]...
    )],
  ))
}

resource "aws_ecs_service" "this" {
  for_each = local.slots

  name                               = "${var.name}-s3ftp-${each.key}"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this[each.key].arn
  desired_count                      = 1
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true
  health_check_grace_period_seconds  = 30
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  tags                               = merge(local.tags, { "s3ftp:task" = each.key })

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.task_subnet_ids
    security_groups  = [aws_security_group.task.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.control.arn
    container_name   = local.container_name
    container_port   = var.container_control_port
  }

  dynamic "load_balancer" {
    for_each = aws_lb_target_group.implicit_tls
    content {
      target_group_arn = load_balancer.value.arn
      container_name   = local.container_name
      container_port   = var.container_implicit_tls_port
    }
  }

  dynamic "load_balancer" {
    for_each = { for port, slot in local.passive_ports : port => slot if slot == each.key }
    content {
      target_group_arn = aws_lb_target_group.passive[load_balancer.key].arn
      container_name   = local.container_name
      container_port   = tonumber(load_balancer.key)
    }
  }

  # A target group must belong to a load balancer (through a listener) before
  # a service can register in it.
  depends_on = [
    aws_lb_listener.control,
    aws_lb_listener.implicit_tls,
    aws_lb_listener.passive,
    aws_iam_role_policy.execution,
    aws_iam_role_policy.task,
  ]

  lifecycle {
    precondition {
      condition     = local.target_groups_per_service <= local.max_target_groups_per_service
      error_message = "Each ECS service would register in ${local.target_groups_per_service} target groups (control, implicit FTPS, passive_ports_per_task); ECS allows ${local.max_target_groups_per_service}. With implicit_tls_port set, passive_ports_per_task can be at most 3."
    }
    precondition {
      condition     = length(distinct(local.all_container_ports)) == length(local.all_container_ports)
      error_message = "container_control_port, container_implicit_tls_port, metrics_port and the passive ports (passive_port_first ...) must all differ."
    }
    precondition {
      condition     = local.passive_port_last <= 65535
      error_message = "The passive ports end at ${local.passive_port_last}, past 65535: lower passive_port_first."
    }
    precondition {
      condition     = (var.tls_certificate_secret_arn == null) == (var.tls_private_key_secret_arn == null)
      error_message = "tls_certificate_secret_arn and tls_private_key_secret_arn go together."
    }
    precondition {
      condition     = !local.implicit_tls || local.tls
      error_message = "implicit_tls_port needs a certificate: set tls_certificate_secret_arn and tls_private_key_secret_arn."
    }
    precondition {
      condition     = var.proxy_protocol == "off" || var.metrics_port != null
      error_message = "proxy_protocol = \"${var.proxy_protocol}\" needs metrics_port: the health checks of target groups sending PROXY headers then connect to the metrics listener, not to an FTP port that would count them as bad headers."
    }
    precondition {
      condition     = length(setintersection(keys(var.environment), local.reserved_environment)) == 0
      error_message = "environment: ${join(", ", setintersection(keys(var.environment), local.reserved_environment))} are set by the module; use its variables instead."
    }
    precondition {
      condition     = var.image_repository_arn != null || !can(regex("^[0-9]{12}\\.dkr\\.ecr\\.", var.image))
      error_message = "image is in a private ECR repository: set image_repository_arn so the task execution role may pull it."
    }
    precondition {
      condition     = !var.create_kms_key || var.kms_key_arn == null
      error_message = "kms_key_arn is for create_kms_key = false: give one or the other."
    }
  }
}
