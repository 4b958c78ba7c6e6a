"""The data-handling policy: the single source of truth for stores, categories and periods."""
from .duration import Duration
from .loader import PolicyError, load_policy
from .models import Category, DynamoDBStore, Hold, Policy, PostgresStore, RDSStore, S3Store, Transform

__all__ = ["Category", "Duration", "DynamoDBStore", "Hold", "Policy", "PolicyError", "PostgresStore", "RDSStore", "S3Store", "Transform", "load_policy"]
