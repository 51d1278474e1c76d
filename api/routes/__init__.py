"""One router per resource; ``api.app`` only includes them."""
