"""The stack's building blocks: each a `pulumi.ComponentResource` with typed args."""
from .audit import AuditTrail, AuditTrailArgs
from .backup import BackupPlan, BackupPlanArgs, BackupVault, BackupVaultArgs
from .bucket import ReplicaTarget, SecureBucket, SecureBucketArgs
from .iam import AccessRoles, AccessRolesArgs
from .kms import CustomerKey, CustomerKeyArgs
from .table import SecureTable, SecureTableArgs

__all__ = [
    "AccessRoles", "AccessRolesArgs", "AuditTrail", "AuditTrailArgs", "BackupPlan", "BackupPlanArgs",
    "BackupVault", "BackupVaultArgs", "CustomerKey", "CustomerKeyArgs", "ReplicaTarget", "SecureBucket",
    "SecureBucketArgs", "SecureTable", "SecureTableArgs",
]
