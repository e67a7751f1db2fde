terraform {
  # The module itself needs 1.2 (preconditions); 1.5 is the oldest version
  # still supported. tests/ needs 1.7 (mock providers).
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.x with security groups on Network Load Balancers and the
      # aws_vpc_security_group_*_rule resources; tested with 5.100.
      version = "~> 5.40"
    }
  }
}
