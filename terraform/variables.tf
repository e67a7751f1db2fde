# ---------------------------------------------------------------------------
# Naming and tags
# ---------------------------------------------------------------------------

variable "name" {
  description = "Name of the deployment: prefix of every resource name (cluster, services, load balancer, target groups, roles, log group). Lowercase letters, digits and hyphens, at most 20 characters so target group names stay under AWS's 32."
  type        = string
  default     = "s3ftp"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.name)) && !endswith(var.name, "-")
    error_message = "name: 1 to 20 characters, lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------

variable "vpc_id" {
  description = "ID of the VPC the load balancer, the tasks and their security groups live in."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the Network Load Balancer, one per Availability Zone: public subnets for an internet-facing load balancer, private ones when internal = true."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "subnet_ids: give at least one subnet (one per Availability Zone the load balancer should serve)."
  }
}

variable "task_subnet_ids" {
  description = "Private subnets of the Fargate tasks (no public IP is assigned). They need a route to S3 (a gateway VPC endpoint is recommended), ECR or the image registry, Secrets Manager and CloudWatch Logs: a NAT gateway or interface VPC endpoints."
  type        = list(string)

  validation {
    condition     = length(var.task_subnet_ids) >= 1
    error_message = "task_subnet_ids: give at least one subnet."
  }
}

variable "internal" {
  description = "Make the Network Load Balancer internal (reachable only inside the VPC and connected networks) instead of internet-facing."
  type        = bool
  default     = false
}

variable "eip_allocation_ids" {
  description = "Elastic IP allocation IDs for an internet-facing load balancer, one per subnet of subnet_ids and in the same order, so clients can allow-list fixed addresses. Empty: AWS assigns the addresses."
  type        = list(string)
  default     = []
}

variable "allowed_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach the control and passive ports (the load balancer's security group). No default: choose who may connect; [\"0.0.0.0/0\"] opens the server to the internet."
  type        = list(string)

  validation {
    condition     = length(var.allowed_cidrs) > 0 && alltrue([for c in var.allowed_cidrs : can(cidrhost(c, 0)) && can(regex("^[0-9.]+/[0-9]+$", c))])
    error_message = "allowed_cidrs: give at least one IPv4 CIDR block, such as 203.0.113.0/24."
  }
}

variable "metrics_allowed_cidrs" {
  description = "IPv4 CIDR blocks (inside the VPC, e.g. a Prometheus server) allowed to scrape the metrics port of the tasks directly. The load balancer's health checks are always allowed."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.metrics_allowed_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "metrics_allowed_cidrs: IPv4 CIDR blocks, and not 0.0.0.0/0."
  }
}

# ---------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------

variable "image" {
  description = "Container image of s3ftp (built from the repository's Dockerfile), e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/s3ftp:1.0.0."
  type        = string
}

variable "image_repository_arn" {
  description = "ARN of the private ECR repository holding image; the task execution role may pull from exactly that repository. null when the image comes from a public registry."
  type        = string
  default     = null
}

variable "cpu" {
  description = "CPU units of each task (256 = 0.25 vCPU). A valid Fargate size together with memory."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.cpu)
    error_message = "cpu: one of 256, 512, 1024, 2048, 4096, 8192, 16384."
  }
}

variable "memory" {
  description = "Memory of each task in MiB; must hold S3FTP_UPLOAD_MEMORY_MIB (160 by default) plus about 128 MiB. A valid Fargate size together with cpu."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory >= 512 && var.memory <= 122880
    error_message = "memory: 512 to 122880 MiB."
  }
}

variable "cpu_architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64 (Graviton, cheaper per vCPU)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture: X86_64 or ARM64."
  }
}

variable "task_count" {
  description = "Number of tasks. Each runs in its own ECS service (desired count 1) with its own passive ports, so a passive data connection always reaches the task that answered PASV. 1 + task_count * passive_ports_per_task load balancer listeners are made (at most 50 per load balancer)."
  type        = number
  default     = 2

  validation {
    condition     = var.task_count >= 1 && var.task_count <= 12 && floor(var.task_count) == var.task_count
    error_message = "task_count: a whole number from 1 to 12 (a load balancer has at most 50 listeners)."
  }
}

variable "control_port" {
  description = "Port of the FTP control listener on the load balancer (what clients connect to)."
  type        = number
  default     = 21

  validation {
    condition     = var.control_port >= 1 && var.control_port <= 65535
    error_message = "control_port: 1 to 65535."
  }
}

variable "container_control_port" {
  description = "Port the server listens on inside the task (S3FTP_LISTEN). Unprivileged, since the container runs as uid 10001; the load balancer maps control_port to it."
  type        = number
  default     = 2121

  validation {
    condition     = var.container_control_port >= 1024 && var.container_control_port <= 65535
    error_message = "container_control_port: 1024 to 65535 (the container does not run as root)."
  }
}

variable "passive_port_first" {
  description = "First passive data port. Task i (from 0) gets passive_ports_per_task ports starting at passive_port_first + i * passive_ports_per_task; the load balancer listens on the same ports."
  type        = number
  default     = 50000

  validation {
    condition     = var.passive_port_first >= 1024 && var.passive_port_first <= 65535 - 48
    error_message = "passive_port_first: 1024 to 65487."
  }
}

variable "passive_ports_per_task" {
  description = "Passive ports per task, 1 to 4 (3 with implicit_tls_port): an ECS service registers in at most 5 target groups, one of which is the control port. A port is busy only between PASV and the client's connection, so 4 serve many concurrent transfers."
  type        = number
  default     = 4

  validation {
    condition     = var.passive_ports_per_task >= 1 && var.passive_ports_per_task <= 4 && floor(var.passive_ports_per_task) == var.passive_ports_per_task
    error_message = "passive_ports_per_task: 1 to 4 (ECS services register in at most 5 target groups)."
  }
}

variable "implicit_tls_port" {
  description = "Load balancer port of an implicit FTPS listener (conventionally 990), served by the task on container_implicit_tls_port. null: no implicit FTPS. Needs the TLS secrets."
  type        = number
  default     = null

  validation {
    condition     = var.implicit_tls_port == null || try(var.implicit_tls_port >= 1 && var.implicit_tls_port <= 65535, false)
    error_message = "implicit_tls_port: null or 1 to 65535."
  }
}

variable "container_implicit_tls_port" {
  description = "Port of the implicit FTPS listener inside the task (S3FTP_TLS_IMPLICIT_LISTEN), used when implicit_tls_port is set."
  type        = number
  default     = 9990

  validation {
    condition     = var.container_implicit_tls_port >= 1024 && var.container_implicit_tls_port <= 65535
    error_message = "container_implicit_tls_port: 1024 to 65535."
  }
}

variable "metrics_port" {
  description = "Port of the HTTP metrics listener in the task (S3FTP_METRICS_LISTEN: /metrics, /healthz, /readyz). The target groups' health checks ask it for /readyz. null: no metrics listener, and the health checks are TCP connections to the control port."
  type        = number
  default     = 9090

  validation {
    condition     = var.metrics_port == null || try(var.metrics_port >= 1024 && var.metrics_port <= 65535, false)
    error_message = "metrics_port: null or 1024 to 65535."
  }
}

variable "pasv_address" {
  description = "Address advertised in PASV replies (S3FTP_PASV_ADDRESS), IP or DNS name. null: the load balancer's DNS name. Set it when clients reach the server under another name (a CNAME of the load balancer)."
  type        = string
  default     = null
}

variable "proxy_protocol" {
  description = "PROXY protocol v2 from the load balancer (S3FTP_PROXY_PROTOCOL). off: none; every target group preserves the client's address. control: a header on control connections (control and implicit FTPS target groups), client addresses still preserved. all: a header on every connection, client IP preservation off, and only the load balancer's subnets may send headers (S3FTP_PROXY_TRUSTED). control and all need metrics_port."
  type        = string
  default     = "off"

  validation {
    condition     = contains(["off", "control", "all"], var.proxy_protocol)
    error_message = "proxy_protocol: off, control or all."
  }
}

variable "control_stickiness" {
  description = "Source-IP stickiness on the control target group: a client's new control connections go to the same task, so S3FTP_MAX_SESSIONS_PER_IP and login-failure bans count all of its sessions. Clients behind one NAT address then share one task."
  type        = bool
  default     = true
}

variable "deregistration_delay" {
  description = "Seconds the load balancer keeps established connections to a task being replaced before it stops counting them (transfers in flight may finish)."
  type        = number
  default     = 60

  validation {
    condition     = var.deregistration_delay >= 0 && var.deregistration_delay <= 3600
    error_message = "deregistration_delay: 0 to 3600 seconds."
  }
}

variable "deletion_protection" {
  description = "Deletion protection of the load balancer. Set false before terraform destroy."
  type        = bool
  default     = true
}

variable "environment" {
  description = "More S3FTP_* variables for the server (e.g. S3FTP_UPLOAD_MEMORY_MIB, S3FTP_REQUIRE_TLS, S3FTP_BANNER). The ones the module sets itself cannot be given here."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.environment) : can(regex("^S3FTP_[A-Z0-9_]+$", k))])
    error_message = "environment: names must be S3FTP_ variables, e.g. S3FTP_REQUIRE_TLS."
  }
}

# ---------------------------------------------------------------------------
# Secrets (AWS Secrets Manager)
# ---------------------------------------------------------------------------

variable "users_secret_arn" {
  description = "Full ARN (with its random suffix) of the Secrets Manager secret whose value is the S3FTP_USERS JSON array (argon2id hashes only, made with `s3ftp hash-password`)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:", var.users_secret_arn))
    error_message = "users_secret_arn: the ARN of a Secrets Manager secret."
  }
}

variable "tls_certificate_secret_arn" {
  description = "Full ARN of the secret holding the PEM certificate chain (leaf first) for FTPS. Set together with tls_private_key_secret_arn; null: no FTPS."
  type        = string
  default     = null

  validation {
    condition     = var.tls_certificate_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:", var.tls_certificate_secret_arn))
    error_message = "tls_certificate_secret_arn: null or the ARN of a Secrets Manager secret."
  }
}

variable "tls_private_key_secret_arn" {
  description = "Full ARN of the secret holding the PEM private key of the certificate. Set together with tls_certificate_secret_arn."
  type        = string
  default     = null

  validation {
    condition     = var.tls_private_key_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:", var.tls_private_key_secret_arn))
    error_message = "tls_private_key_secret_arn: null or the ARN of a Secrets Manager secret."
  }
}

variable "secrets_kms_key_arn" {
  description = "ARN of the customer managed KMS key the secrets are encrypted with, if any; the task execution role may decrypt with it through Secrets Manager only. null: the secrets use the AWS managed key."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the S3 bucket the server stores files in."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name: 3 to 63 lowercase letters, digits, dots and hyphens."
  }
}

variable "create_bucket" {
  description = "Create the bucket (encrypted, versioned, public access blocked, TLS-only, lifecycle rules). false: use an existing bucket; the module then only grants the task access to it."
  type        = bool
  default     = true
}

variable "bucket_prefix" {
  description = "Key prefix under which the FTP tree is stored (\"\" for the whole bucket). The task role may touch objects under this prefix only."
  type        = string
  default     = ""

  validation {
    condition     = !can(regex("(^|/)\\.{1,2}(/|$)|//", var.bucket_prefix))
    error_message = "bucket_prefix: no empty, . or .. segments."
  }
}

variable "create_kms_key" {
  description = "Create a customer managed KMS key (with rotation) for the bucket and the log group. false: use kms_key_arn, or S3 managed encryption (SSE-S3) and the default log encryption when that is null too."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "ARN of an existing KMS key for the bucket and the log group, when create_kms_key = false. For an existing bucket, the key its objects are encrypted with. Its key policy must allow CloudWatch Logs to use it for the log group."
  type        = string
  default     = null
}

variable "versioning" {
  description = "Enable versioning on the created bucket (overwritten and deleted files stay recoverable until noncurrent_version_expiration_days)."
  type        = bool
  default     = true
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which noncurrent object versions (overwritten or deleted files; renames are copy + delete) are removed from the created bucket."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days: at least 1."
  }
}

variable "access_log_bucket" {
  description = "Name of an existing bucket receiving the S3 server access logs of the created bucket (it must allow the S3 logging service to write). null: no S3 access logs."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------

variable "log_retention_days" {
  description = "Days the CloudWatch log group keeps the server's logs (one of the values CloudWatch accepts)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days: one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}
