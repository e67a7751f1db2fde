# Two roles per deployment:
# - the task execution role, used by ECS to start the task: pull the image,
#   write the log group, read exactly the given secrets;
# - the task role, the server's own AWS credentials (default credential
#   chain): the bucket, and the KMS key when one is used. Nothing else.

# The task role's trust is limited to ECS tasks of this account (AWS's
# confused-deputy guidance for task IAM roles). The execution role keeps the
# plain trust policy AWS documents for it.
data "aws_iam_policy_document" "task_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

data "aws_iam_policy_document" "execution_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# --- Task execution role ------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${var.name}-s3ftp-execution"
  description        = "ECS starts the s3ftp tasks of ${var.name}: image, logs, secrets."
  assume_role_policy = data.aws_iam_policy_document.execution_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "execution" {
  name   = "start-s3ftp-task"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "WriteTheLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:log-stream:*"]
  }

  statement {
    sid       = "ReadTheSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.secret_arns
  }

  dynamic "statement" {
    for_each = var.secrets_kms_key_arn == null ? [] : [var.secrets_kms_key_arn]
    content {
      sid       = "DecryptTheSecrets"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = var.image_repository_arn == null ? [] : [var.image_repository_arn]
    content {
      sid = "PullTheImage"
      actions = [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
      ]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.image_repository_arn == null ? [] : [var.image_repository_arn]
    content {
      sid = "LogInToEcr"
      # ecr:GetAuthorizationToken has no resource-level permissions: AWS only
      # accepts "*" here. The token alone grants nothing; the statement above
      # limits what can be pulled.
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }
}

# --- Task role ----------------------------------------------------------------

resource "aws_iam_role" "task" {
  name               = "${var.name}-s3ftp-task"
  description        = "The s3ftp server of ${var.name}: bucket ${var.bucket_name} only."
  assume_role_policy = data.aws_iam_policy_document.task_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "task" {
  name   = "s3ftp-bucket"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

data "aws_iam_policy_document" "task" {
  # HeadBucket at start, listings (ListObjectsV2), and the multipart uploads
  # in progress.
  statement {
    sid       = "ListTheBucket"
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [local.bucket_arn]
  }

  # GetObject (RETR, and the source of CopyObject/UploadPartCopy for renames,
  # APPE and REST+STOR), PutObject (STOR, MKD markers, CopyObject targets,
  # multipart parts), DeleteObject (DELE, RMD, renames, DeleteObjects).
  statement {
    sid = "ReadAndWriteTheObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = [local.object_arn]
  }

  dynamic "statement" {
    for_each = local.kms_key_arn == null ? [] : [local.kms_key_arn]
    content {
      sid       = "UseTheBucketKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
    }
  }
}
