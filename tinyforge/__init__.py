"""TinyForge: the domain library of a self-hosted platform for edge machine learning.

Every service, workflow step and block imports this package; it never imports a service.
"""

__version__ = "0.1.0"
