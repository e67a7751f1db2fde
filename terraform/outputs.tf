output "nlb_dns_name" {
  description = "DNS name of the Network Load Balancer: the host clients connect to (point a CNAME at it, and set pasv_address to that name)."
  value       = aws_lb.this.dns_name
}

output "nlb_arn" {
  description = "ARN of the Network Load Balancer."
  value       = aws_lb.this.arn
}

output "nlb_zone_id" {
  description = "Route 53 hosted zone ID of the load balancer, for an alias record."
  value       = aws_lb.this.zone_id
}

output "ftp_url" {
  description = "URL of the FTP server (explicit FTPS too, with AUTH TLS, when the TLS secrets are given)."
  value       = var.control_port == 21 ? "ftp://${aws_lb.this.dns_name}/" : "ftp://${aws_lb.this.dns_name}:${var.control_port}/"
}

output "ftps_implicit_url" {
  description = "URL of the implicit FTPS listener, or null without implicit_tls_port."
  value       = local.implicit_tls ? (var.implicit_tls_port == 990 ? "ftps://${aws_lb.this.dns_name}/" : "ftps://${aws_lb.this.dns_name}:${var.implicit_tls_port}/") : null
}

output "passive_ports" {
  description = "Passive port range of every task, by task number (S3FTP_PASV_PORTS), and of all together (open these in client-side firewalls)."
  value = {
    all   = "${var.passive_port_first}-${local.passive_port_last}"
    tasks = { for k, s in local.slots : k => "${s.first_port}-${s.last_port}" }
  }
}

output "bucket_name" {
  description = "Name of the bucket the server stores files in."
  value       = var.create_bucket ? aws_s3_bucket.this[0].id : var.bucket_name
}

output "bucket_arn" {
  description = "ARN of the bucket."
  value       = local.bucket_arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key of the bucket and the log group (created or given), or null for AWS managed encryption."
  value       = local.kms_key_arn
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "service_names" {
  description = "Names of the ECS services, one per task."
  value       = [for s in aws_ecs_service.this : s.name]
}

output "task_role_arn" {
  description = "ARN of the task role (the server's AWS identity), e.g. for a bucket policy of an existing bucket."
  value       = aws_iam_role.task.arn
}

output "execution_role_arn" {
  description = "ARN of the task execution role (image pull, logs, secrets)."
  value       = aws_iam_role.execution.arn
}

output "log_group_name" {
  description = "Name of the CloudWatch log group of the server's JSON logs."
  value       = aws_cloudwatch_log_group.this.name
}

output "nlb_security_group_id" {
  description = "ID of the load balancer's security group."
  value       = aws_security_group.nlb.id
}

output "task_security_group_id" {
  description = "ID of the tasks' security group (e.g. to allow them in a VPC endpoint's group)."
  value       = aws_security_group.task.id
}
