"""What the charging security tests share: the coordination's windows and an EV's battery and charger."""

WINDOW_S = 900
REQUEST_LEAD_S = 300
ROUND_S = 60
MIN_REQUEST_W = 1000
ROLE_PROSUMER = 2
# A 50 kWh battery behind a 90 % efficient 7.4 kW charger. [Wh], [W]
CAPACITY_WH = 55_556
CHARGER_W = 7400
