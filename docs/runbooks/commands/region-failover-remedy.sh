# Step 1: the primary's routing control OFF (needs MFA; the incident lead decides).
aws route53-recovery-cluster update-routing-control-state --routing-control-arn arn:aws:route53-recovery-control::111122223333:controlpanel/0123456789abcdef0123456789abcdef/routingcontrol/0a1b2c3d4e5f6a7b --routing-control-state Off --endpoint-url https://host-aaaaaa.us-west-2.example.route53-recovery-cluster.amazonaws.com/v1 --region us-west-2
# Step 2, only after the fence interval (lease + clock skew + longest write): the secondary ON.
aws route53-recovery-cluster update-routing-control-state --routing-control-arn arn:aws:route53-recovery-control::111122223333:controlpanel/0123456789abcdef0123456789abcdef/routingcontrol/1b2c3d4e5f6a7b8c --routing-control-state On --endpoint-url https://host-aaaaaa.us-west-2.example.route53-recovery-cluster.amazonaws.com/v1 --region us-west-2
# Confirm: the primary's control Off, the secondary's On.
aws route53-recovery-cluster list-routing-controls --endpoint-url https://host-aaaaaa.us-west-2.example.route53-recovery-cluster.amazonaws.com/v1 --region us-west-2 --query 'RoutingControls[].[RoutingControlName,RoutingControlState]' --output table
