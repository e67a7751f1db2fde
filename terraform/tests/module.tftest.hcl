# Plan-and-apply tests against a mocked AWS provider (no account, no network):
# `terraform test` in terraform/ (Terraform 1.7+), run by
# scripts/check-terraform.sh when the AWS provider is available offline.

mock_provider "aws" {
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_subnet" {
    defaults = { cidr_block = "10.0.0.0/24" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
  mock_resource "aws_lb" {
    defaults = {
      arn      = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/s3ftp/0123456789abcdef"
      dns_name = "s3ftp-0123456789.elb.eu-west-1.amazonaws.com"
    }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/s3ftp" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/s3ftp" }
  }
  mock_resource "aws_lb_target_group" {
    defaults = { arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/s3ftp/0123456789abcdef" }
  }
  mock_resource "aws_ecs_task_definition" {
    defaults = { arn = "arn:aws:ecs:eu-west-1:123456789012:task-definition/s3ftp:1" }
  }
  mock_resource "aws_ecs_cluster" {
    defaults = { arn = "arn:aws:ecs:eu-west-1:123456789012:cluster/s3ftp" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::example-ftp-bucket" }
  }
}

variables {
  vpc_id               = "vpc-0123456789abcdef0"
  subnet_ids           = ["subnet-a", "subnet-b"]
  task_subnet_ids      = ["subnet-c", "subnet-d"]
  allowed_cidrs        = ["203.0.113.0/24"]
  image                = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/s3ftp:1"
  image_repository_arn = "arn:aws:ecr:eu-west-1:123456789012:repository/s3ftp"
  users_secret_arn     = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s3ftp/users-AbCdEf"
  bucket_name          = "example-ftp-bucket"
}

run "defaults_two_slots_of_four_ports" {
  command = apply

  assert {
    condition     = length(aws_lb_listener.passive) == 8 && length(aws_lb_target_group.passive) == 8
    error_message = "2 tasks x 4 ports: 8 passive listeners and target groups"
  }
  assert {
    condition     = length(aws_ecs_service.this) == 2 && alltrue([for s in aws_ecs_service.this : s.desired_count == 1])
    error_message = "one service of one task per slot"
  }
  assert {
    condition     = alltrue([for s in aws_ecs_service.this : length(s.load_balancer) == 5])
    error_message = "each service registers in the control target group and its 4 passive ones"
  }
  assert {
    condition     = toset([for lb in aws_ecs_service.this["1"].load_balancer : lb.container_port]) == toset([2121, 50004, 50005, 50006, 50007])
    error_message = "task 1 owns ports 50004-50007"
  }
  assert {
    condition     = aws_lb_listener.control.port == 21 && aws_lb_target_group.control.port == 2121
    error_message = "control: listener 21 to the task's 2121"
  }
  assert {
    condition     = alltrue([for tg in aws_lb_target_group.passive : tg.port == tonumber(tg.tags["s3ftp:task"]) * 4 + 50000 + (tg.port - 50000) % 4])
    error_message = "passive target group ports follow their slot"
  }
  assert {
    condition     = alltrue([for tg in concat([aws_lb_target_group.control], values(aws_lb_target_group.passive)) : tg.preserve_client_ip == "true" && !tg.proxy_protocol_v2 && tg.health_check[0].protocol == "HTTP" && tg.health_check[0].port == "9090" && tg.health_check[0].path == "/readyz"])
    error_message = "default: client IP preserved, no PROXY header, HTTP /readyz on 9090"
  }
  assert {
    condition     = aws_lb_target_group.control.stickiness[0].enabled && aws_lb_target_group.control.stickiness[0].type == "source_ip"
    error_message = "control target group: source-IP stickiness"
  }
  assert {
    condition     = aws_lb.this.enable_cross_zone_load_balancing && aws_lb.this.load_balancer_type == "network"
    error_message = "cross-zone load balancing on"
  }
  assert {
    condition = {
      for e in jsondecode(aws_ecs_task_definition.this["1"].container_definitions)[0].environment : e.name => e.value
      } == {
      S3FTP_LISTEN         = "0.0.0.0:2121"
      S3FTP_PASV_PORTS     = "50004-50007"
      S3FTP_PASV_ADDRESS   = "s3ftp-0123456789.elb.eu-west-1.amazonaws.com"
      S3FTP_MOUNTS         = "/=s3://example-ftp-bucket?region=eu-west-1"
      S3FTP_LOG_FORMAT     = "json"
      S3FTP_METRICS_LISTEN = "0.0.0.0:9090"
    }
    error_message = "task 1's environment"
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this["0"].container_definitions)[0].secrets == [{ name = "S3FTP_USERS", valueFrom = var.users_secret_arn }]
    error_message = "users from the secret"
  }
  assert {
    condition = alltrue([
      for c in jsondecode(aws_ecs_task_definition.this["0"].container_definitions) :
      c.readonlyRootFilesystem && c.user == "10001" && c.linuxParameters.capabilities.drop == ["ALL"]
    ])
    error_message = "non-root, read-only, no capabilities"
  }
  assert {
    condition     = length(jsondecode(aws_ecs_task_definition.this["0"].container_definitions)) == 1 && !can(jsondecode(aws_ecs_task_definition.this["0"].container_definitions)[0].mountPoints)
    error_message = "no TLS: no tls-files container, no mount"
  }
  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.this["0"].container_definitions)[0].readonlyRootFilesystem == true
      && jsondecode(aws_ecs_task_definition.this["0"].container_definitions)[0].essential == true
      && jsondecode(aws_ecs_task_definition.this["0"].container_definitions)[0].portMappings[0] == { containerPort = 2121, protocol = "tcp" }
    )
    error_message = "JSON types: booleans and numbers stay booleans and numbers"
  }
  assert {
    condition     = aws_s3_bucket_lifecycle_configuration.this[0].rule[0].abort_incomplete_multipart_upload[0].days_after_initiation == 1
    error_message = "incomplete multipart uploads aborted after a day"
  }
  assert {
    condition     = one([for r in aws_s3_bucket_server_side_encryption_configuration.this[0].rule : r.apply_server_side_encryption_by_default[0].sse_algorithm]) == "aws:kms"
    error_message = "the bucket is encrypted with the module's KMS key"
  }
  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.nlb_clients) == 2 && aws_vpc_security_group_ingress_rule.nlb_clients["passive 203.0.113.0/24"].to_port == 50007
    error_message = "clients reach control and passive ports 50000-50007 from allowed_cidrs only"
  }
  assert {
    condition     = output.passive_ports == { all = "50000-50007", tasks = { "0" = "50000-50003", "1" = "50004-50007" } }
    error_message = "passive_ports output"
  }
  assert {
    condition     = output.ftp_url == "ftp://s3ftp-0123456789.elb.eu-west-1.amazonaws.com/"
    error_message = "ftp_url output"
  }
}

run "tls_implicit_prefix_and_proxy_control" {
  command = apply

  variables {
    task_count                 = 3
    passive_ports_per_task     = 3
    implicit_tls_port          = 990
    tls_certificate_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s3ftp/cert-AbCdEf"
    tls_private_key_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s3ftp/key-AbCdEf"
    proxy_protocol             = "control"
    bucket_prefix              = "/incoming/"
    environment                = { S3FTP_REQUIRE_TLS = "true", S3FTP_SHUTDOWN_GRACE = "60" }
  }

  assert {
    condition     = length(aws_lb_listener.passive) == 9 && length(aws_lb_listener.implicit_tls) == 1
    error_message = "3 tasks x 3 ports, plus the implicit FTPS listener"
  }
  assert {
    condition     = alltrue([for s in aws_ecs_service.this : length(s.load_balancer) == 5])
    error_message = "control, implicit FTPS and 3 passive target groups per service"
  }
  assert {
    condition     = [for c in jsondecode(aws_ecs_task_definition.this["2"].container_definitions) : c.name] == ["tls-files", "s3ftp"]
    error_message = "the tls-files container comes first"
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this["2"].container_definitions)[1].dependsOn == [{ containerName = "tls-files", condition = "SUCCESS" }]
    error_message = "the server waits for the TLS files"
  }
  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.this["2"].container_definitions)[1].mountPoints == [{ sourceVolume = "tls", containerPath = "/run/s3ftp-tls", readOnly = true }]
      && jsondecode(aws_ecs_task_definition.this["2"].container_definitions)[0].mountPoints == [{ sourceVolume = "tls", containerPath = "/run/s3ftp-tls", readOnly = false }]
    )
    error_message = "the TLS volume: written by tls-files, read-only for the server (booleans, not strings)"
  }
  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.this["2"].container_definitions)[0].essential == false
      && jsondecode(aws_ecs_task_definition.this["2"].container_definitions)[0].user == "0"
      && [for s in jsondecode(aws_ecs_task_definition.this["2"].container_definitions)[0].secrets : s.valueFrom] == [var.tls_certificate_secret_arn, var.tls_private_key_secret_arn]
    )
    error_message = "tls-files: not essential, root, gets both PEM secrets"
  }
  assert {
    condition     = one([for v in aws_ecs_task_definition.this["2"].volume : v.name]) == "tls"
    error_message = "the task has the tls volume"
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this["2"].container_definitions)[1].stopTimeout == 75
    error_message = "stop timeout = S3FTP_SHUTDOWN_GRACE + 15"
  }
  assert {
    condition = {
      for e in jsondecode(aws_ecs_task_definition.this["2"].container_definitions)[1].environment : e.name => e.value
      if contains(["S3FTP_PASV_PORTS", "S3FTP_MOUNTS", "S3FTP_TLS_CERT", "S3FTP_TLS_IMPLICIT_LISTEN", "S3FTP_PROXY_PROTOCOL", "S3FTP_REQUIRE_TLS"], e.name)
      } == {
      S3FTP_PASV_PORTS          = "50006-50008"
      S3FTP_MOUNTS              = "/=s3://example-ftp-bucket/incoming?region=eu-west-1"
      S3FTP_TLS_CERT            = "/run/s3ftp-tls/cert.pem"
      S3FTP_TLS_IMPLICIT_LISTEN = "0.0.0.0:9990"
      S3FTP_PROXY_PROTOCOL      = "control"
      S3FTP_REQUIRE_TLS         = "true"
    }
    error_message = "task 2's environment"
  }
  assert {
    condition     = aws_lb_target_group.control.proxy_protocol_v2 && aws_lb_target_group.implicit_tls[0].proxy_protocol_v2 && aws_lb_target_group.control.health_check[0].protocol == "TCP" && aws_lb_target_group.control.health_check[0].port == "9090"
    error_message = "proxy control: headers on control target groups, TCP health checks on the metrics port"
  }
  assert {
    condition     = alltrue([for tg in aws_lb_target_group.passive : !tg.proxy_protocol_v2 && tg.preserve_client_ip == "true" && tg.health_check[0].protocol == "HTTP"])
    error_message = "proxy control: passive target groups keep client IP preservation and HTTP checks"
  }
}

run "proxy_all" {
  command = apply

  variables {
    proxy_protocol = "all"
  }

  assert {
    condition     = alltrue([for tg in concat([aws_lb_target_group.control], values(aws_lb_target_group.passive)) : tg.proxy_protocol_v2 && tg.preserve_client_ip == "false" && tg.health_check[0].protocol == "TCP"])
    error_message = "proxy all: headers everywhere, no client IP preservation, TCP health checks"
  }
  assert {
    condition = {
      for e in jsondecode(aws_ecs_task_definition.this["0"].container_definitions)[0].environment : e.name => e.value
      if startswith(e.name, "S3FTP_PROXY_")
    } == { S3FTP_PROXY_PROTOCOL = "all", S3FTP_PROXY_TRUSTED = "10.0.0.0/24" }
    error_message = "proxy all: the server trusts the load balancer's subnets"
  }
}

run "existing_bucket_without_kms" {
  command = plan

  variables {
    create_bucket  = false
    create_kms_key = false
    task_count     = 1
  }

  assert {
    condition     = length(aws_s3_bucket.this) == 0 && length(aws_kms_key.this) == 0
    error_message = "no bucket and no key created"
  }
  assert {
    condition     = aws_cloudwatch_log_group.this.retention_in_days == 365 && aws_cloudwatch_log_group.this.kms_key_id == null
    error_message = "log group: one year, default encryption"
  }
}

run "most_listeners" {
  command = plan

  variables {
    task_count = 12
  }

  assert {
    condition     = length(aws_lb_listener.passive) == 48
    error_message = "12 tasks x 4 ports = 48 passive listeners (49 with control)"
  }
}

run "too_many_target_groups_per_service" {
  command = plan

  variables {
    implicit_tls_port          = 990
    tls_certificate_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s3ftp/cert-AbCdEf"
    tls_private_key_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s3ftp/key-AbCdEf"
  }

  expect_failures = [aws_ecs_service.this]
}

run "implicit_tls_with_twelve_tasks" {
  command = plan

  variables {
    task_count                 = 12
    implicit_tls_port          = 990
    passive_ports_per_task     = 3
    tls_certificate_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s3ftp/cert-AbCdEf"
    tls_private_key_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s3ftp/key-AbCdEf"
  }

  # 1 + 1 + 36 = 38 listeners. (The variables' bounds keep every valid
  # combination within 50 listeners; aws_lb's precondition guards changes to
  # those bounds.)
  assert {
    condition     = length(aws_lb_listener.passive) == 36
    error_message = "12 tasks x 3 ports"
  }
}

run "reserved_environment" {
  command = plan

  variables {
    environment = { S3FTP_LISTEN = "0.0.0.0:21" }
  }

  expect_failures = [aws_ecs_service.this]
}

run "proxy_needs_metrics" {
  command = plan

  variables {
    proxy_protocol = "control"
    metrics_port   = null
  }

  expect_failures = [aws_ecs_service.this]
}

run "port_collision" {
  command = plan

  variables {
    metrics_port = 50001
  }

  expect_failures = [aws_ecs_service.this]
}

run "allowed_cidrs_required" {
  command = plan

  variables {
    allowed_cidrs = []
  }

  expect_failures = [var.allowed_cidrs]
}

run "listener_port_collision" {
  command = plan

  variables {
    control_port = 50003
  }

  expect_failures = [aws_lb.this]
}

run "tls_secrets_go_together" {
  command = plan

  variables {
    tls_certificate_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s3ftp/cert-AbCdEf"
  }

  expect_failures = [aws_ecs_service.this]
}

run "implicit_tls_needs_a_certificate" {
  command = plan

  variables {
    implicit_tls_port      = 990
    passive_ports_per_task = 3
  }

  expect_failures = [aws_ecs_service.this]
}

run "private_ecr_image_needs_its_repository" {
  command = plan

  variables {
    image_repository_arn = null
  }

  expect_failures = [aws_ecs_service.this]
}

run "public_image_needs_no_repository" {
  command = plan

  variables {
    image                = "public.ecr.aws/example/s3ftp:1"
    image_repository_arn = null
  }

  assert {
    condition     = length(aws_ecs_service.this) == 2
    error_message = "a public image plans without image_repository_arn"
  }
}
