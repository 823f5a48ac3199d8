"""Named capabilities and the roles that grant them.

Views ask for a capability, never for a role, so a later feature adds a capability here (and to the roles that
should have it) without inventing a role."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PRACTICE_ADMIN = "practice_admin"
    AGENT = "agent"
    READ_ONLY = "read_only"

    @property
    def label(self) -> str:
        return {"practice_admin": "Practice admin", "agent": "Agent", "read_only": "Read-only"}[self.value]


class Capability(StrEnum):
    VIEW_CLIENTS = "view_clients"
    EDIT_CLIENTS = "edit_clients"
    IMPORT_CLIENTS = "import_clients"
    EXPORT_CLIENTS = "export_clients"
    MANAGE_GROUPS = "manage_groups"
    VIEW_FULL_TFN = "view_full_tfn"
    MANAGE_RELATIONSHIPS = "manage_relationships"
    UPDATE_CLIENT_DETAILS = "update_client_details"
    UPDATE_BANK_DETAILS = "update_bank_details"
    APPROVE_CHANGES = "approve_changes"
    MANAGE_STAFF = "manage_staff"
    VIEW_AUDIT = "view_audit"
    OPERATE_GATEWAY = "operate_gateway"
    MANAGE_CREDENTIALS = "manage_credentials"
    MANAGE_SUPER_FUNDS = "manage_super_funds"

    @property
    def label(self) -> str:
        return CAPABILITY_LABELS[self]


CAPABILITY_LABELS: dict[Capability, str] = {
    Capability.VIEW_CLIENTS: "View clients",
    Capability.EDIT_CLIENTS: "Add and edit clients",
    Capability.IMPORT_CLIENTS: "Import clients from CSV",
    Capability.EXPORT_CLIENTS: "Export clients to CSV",
    Capability.MANAGE_GROUPS: "Manage client groups",
    Capability.VIEW_FULL_TFN: "View full TFN (audited)",
    Capability.MANAGE_RELATIONSHIPS: "Manage ATO relationships",
    Capability.UPDATE_CLIENT_DETAILS: "Update client details at the ATO",
    Capability.UPDATE_BANK_DETAILS: "Update bank details",
    Capability.APPROVE_CHANGES: "Approve changes made by others",
    Capability.MANAGE_STAFF: "Manage staff and access",
    Capability.VIEW_AUDIT: "Search the audit trail",
    Capability.OPERATE_GATEWAY: "Operate the ATO gateway (message log, resend)",
    Capability.MANAGE_CREDENTIALS: "Manage machine credentials",
    Capability.MANAGE_SUPER_FUNDS: "Manage super funds",
}

ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.PRACTICE_ADMIN: frozenset(Capability),
    Role.AGENT: frozenset(
        {
            Capability.VIEW_CLIENTS,
            Capability.EDIT_CLIENTS,
            Capability.IMPORT_CLIENTS,
            Capability.EXPORT_CLIENTS,
            Capability.VIEW_FULL_TFN,
            Capability.MANAGE_RELATIONSHIPS,
            Capability.UPDATE_CLIENT_DETAILS,
            Capability.UPDATE_BANK_DETAILS,
            Capability.MANAGE_SUPER_FUNDS,
        }
    ),
    Role.READ_ONLY: frozenset({Capability.VIEW_CLIENTS}),
}
