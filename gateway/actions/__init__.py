"""What a farmer's or a staff member's action changes across data and outbound: the menus'
effects, market linkage (demands, offers, buyers), price corrections, imports."""
