# The smallest useful deployment: two tasks behind an internet-facing Network
# Load Balancer in an existing VPC, a new encrypted bucket, users from a
# Secrets Manager secret. See README.md next to this file.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.40"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"
}

variable "vpc_id" {
  description = "Existing VPC."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets for the load balancer, one per Availability Zone."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Private subnets (with a NAT gateway or VPC endpoints) for the tasks."
  type        = list(string)
}

variable "image" {
  description = "The s3ftp image, built from the repository's Dockerfile and pushed to ECR."
  type        = string
}

variable "image_repository_arn" {
  description = "ARN of the ECR repository of image."
  type        = string
}

variable "users_secret_arn" {
  description = "Secrets Manager secret holding the S3FTP_USERS JSON array."
  type        = string
}

variable "allowed_cidrs" {
  description = "Networks allowed to connect."
  type        = list(string)
}

module "s3ftp" {
  source = "../.."

  name                 = "s3ftp-demo"
  vpc_id               = var.vpc_id
  subnet_ids           = var.public_subnet_ids
  task_subnet_ids      = var.private_subnet_ids
  allowed_cidrs        = var.allowed_cidrs
  image                = var.image
  image_repository_arn = var.image_repository_arn
  users_secret_arn     = var.users_secret_arn
  bucket_name          = "s3ftp-demo-${data.aws_caller_identity.current.account_id}"

  task_count             = 2
  passive_ports_per_task = 4 # ports 50000-50007: 50000-50003 on task 0, 50004-50007 on task 1

  environment = {
    S3FTP_MAX_SESSIONS = "256"
  }

  tags = {
    environment = "demo"
  }
}

data "aws_caller_identity" "current" {}

output "ftp_url" {
  description = "Where clients connect."
  value       = module.s3ftp.ftp_url
}

output "passive_ports" {
  description = "Passive ports to open in client-side firewalls."
  value       = module.s3ftp.passive_ports.all
}
