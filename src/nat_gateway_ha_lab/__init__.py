"""The lab: an emulated VPC on one Linux machine (hosts, networks, EC2 API, IMDS, data plane)."""
