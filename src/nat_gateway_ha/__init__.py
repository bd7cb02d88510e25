"""nat-gateway-ha: an HA NAT gateway pair on EC2, elected by keepalived, failed over by one agent."""

__version__ = "0.1.0"
