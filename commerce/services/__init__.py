"""Write use-cases of the commerce core, one module per area (channel: dealers, stores, their people)."""
