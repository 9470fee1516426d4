"""StackBackup core: snapshot, manifest, validation, restore, retention and schedules.

Modules: `manifest` (the manifest model and count comparison), `rdb` (RDB header),
`rediscli` (redis-cli in containers, throwaway Redis), `create` (taking a backup),
`validate` (verifying one), `restore` (restore with rollback), `retention` and `schedule`
(pure decisions).
"""
