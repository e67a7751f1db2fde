# The server logs one JSON object per line (S3FTP_LOG_FORMAT=json) to stderr;
# the awslogs driver sends them here.

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
  tags              = local.tags
}
