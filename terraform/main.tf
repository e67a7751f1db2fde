data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

# With proxy_protocol = "all" the tasks see the load balancer's own addresses,
# which lie in its subnets: only those may send PROXY headers.
data "aws_subnet" "nlb" {
  for_each = var.proxy_protocol == "all" ? toset(var.subnet_ids) : toset([])

  id = each.value
}

locals {
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id

  tags = merge({ "app" = "s3ftp", "s3ftp:deployment" = var.name }, var.tags)

  # --- Ports ---------------------------------------------------------------
  # Task i (0-based) owns the passive ports
  # [passive_port_first + i * passive_ports_per_task, ... + passive_ports_per_task - 1].
  # Every passive port has its own listener and target group holding only the
  # task of that slot, which is how a data connection finds the task that
  # answered PASV (see README: "Passive mode behind the load balancer").
  slots = {
    for i in range(var.task_count) : tostring(i) => {
      index      = i
      first_port = var.passive_port_first + i * var.passive_ports_per_task
      last_port  = var.passive_port_first + (i + 1) * var.passive_ports_per_task - 1
    }
  }

  # One entry per passive port: port => slot key.
  passive_ports = merge([
    for k, s in local.slots : { for p in range(s.first_port, s.last_port + 1) : tostring(p) => k }
  ]...)

  passive_port_last = var.passive_port_first + var.task_count * var.passive_ports_per_task - 1

  implicit_tls = var.implicit_tls_port != null

  # PROXY protocol v2 headers on the control (and implicit FTPS) target
  # groups, and on the passive ones.
  proxy_on_control = var.proxy_protocol != "off"
  proxy_on_passive = var.proxy_protocol == "all"

  listener_ports = concat(
    [tostring(var.control_port)],
    local.implicit_tls ? [tostring(var.implicit_tls_port)] : [],
    keys(local.passive_ports),
  )

  # Listeners on the load balancer, target groups per ECS service.
  listener_count                = 1 + (local.implicit_tls ? 1 : 0) + length(local.passive_ports)
  target_groups_per_service     = 1 + (local.implicit_tls ? 1 : 0) + var.passive_ports_per_task
  max_listeners_per_nlb         = 50
  max_target_groups_per_service = 5

  # --- Storage -------------------------------------------------------------
  bucket_prefix = trim(var.bucket_prefix, "/")
  bucket_arn    = "arn:${local.partition}:s3:::${var.bucket_name}"
  # Objects the task may touch: the whole bucket, or only under the prefix.
  object_arn = local.bucket_prefix == "" ? "${local.bucket_arn}/*" : "${local.bucket_arn}/${local.bucket_prefix}/*"

  kms_key_arn = var.create_kms_key ? aws_kms_key.this[0].arn : var.kms_key_arn

  # --- TLS -----------------------------------------------------------------
  tls = var.tls_certificate_secret_arn != null && var.tls_private_key_secret_arn != null

  secret_arns = compact([
    var.users_secret_arn,
    var.tls_certificate_secret_arn,
    var.tls_private_key_secret_arn,
  ])
}
