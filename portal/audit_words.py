"""The audit trail's event codes in words a practice admin reads on the audit search page.

The code stays the record (it is chained and searched); these words are only how it is shown. An event without an
entry (one added later, before its words) is shown as its code made readable, never as nothing."""

from __future__ import annotations

EVENT_WORDS: dict[str, str] = {
    # Signing in and second factors
    "login.succeeded": "Signed in",
    "login.failed": "Sign-in failed",
    "login.locked_out": "Sign-in paused after repeated failures",
    "login.mfa_failed": "Wrong authenticator code",
    "logout": "Signed out",
    "mfa.enrolled": "Set up an authenticator",
    "mfa.enrolment_failed": "Authenticator set-up failed",
    "mfa.backup_codes_replaced": "Made new backup codes",
    "mfa.backup_codes_refused": "New backup codes refused (password not confirmed)",
    "mfa.passkey_added": "Added a passkey",
    "mfa.passkey_removed": "Removed a passkey",
    "mfa.passkey_refused": "A passkey was refused",
    # Staff and the practice
    "practice.created": "Practice created",
    "staff.invited": "Invited a staff member",
    "staff.invite_resent": "Sent an invitation again",
    "staff.invite_withdrawn": "Withdrew an invitation",
    "staff.invite_accepted": "Accepted an invitation",
    "staff.role_changed": "Changed a staff member's role",
    "staff.groups_changed": "Changed a staff member's client groups",
    "staff.deactivated": "Deactivated a staff member",
    "staff.reactivated": "Reactivated a staff member",
    "staff.mfa_reset": "Reset a staff member's two-step sign-in",
    "staff.password_changed": "Changed their password",
    "staff.password_reset": "Reset a staff member's password",
    # The audit trail itself
    "audit.verified": "Checked the audit trail's chain",
    "audit.chain_broken": "Found the audit trail's chain broken",
    # Clients
    "client.created": "Added a client",
    "client.updated": "Edited a client",
    "client.groups_changed": "Changed a client's groups",
    "client.account_added": "Added an account to a client",
    "client.roles_changed": "Changed a client's roles",
    "client.tfn_revealed": "Viewed a full TFN",
    "client.tfn_reveal_refused": "Full TFN view refused",
    "clients.exported": "Exported clients to CSV",
    "clients.import_uploaded": "Uploaded a client import",
    "clients.import_started": "Started a client import",
    "clients.import_resumed": "Resumed a client import",
    "clients.import_expired": "A client import expired unused",
    "clients.imported": "Finished a client import",
    "group.created": "Created a client group",
    # Relationships (CUREL)
    "relationships.search": "Searched the ATO for a client",
    "relationships.validate": "Checked a link with the ATO",
    "relationships.submit": "Asked the ATO to link a client",
    "relationships.linked": "Linked a client at the ATO",
    "relationships.validate_remove": "Checked a link's removal with the ATO",
    "relationships.remove": "Asked the ATO to remove a link",
    "relationships.removed": "Removed a link at the ATO",
    "relationships.bulk_uploaded": "Uploaded a bulk link file",
    "relationships.bulk_submitted": "Sent a bulk link to the ATO",
    "relationships.bulk_checked_again": "Checked a bulk link's rows again",
    "relationships.bulk_report_downloaded": "Downloaded a bulk link's report",
    "relationships.reconcile_started": "Started a reconciliation with the ATO",
    "relationships.reconcile_resumed": "Resumed a reconciliation",
    "relationships.reconciled": "Finished a reconciliation",
    "relationships.reconcile_failed": "A reconciliation stopped",
    "relationships.drift_exported": "Exported the reconciliation's differences",
    "relationships.alerts_read": "Read the lost-access alerts",
    # Demographics
    "demographics.snapshot_ask": "Asked the ATO for a client's details",
    "demographics.drift_alert_read": "Read a drift alert",
    "demographics.address_validate": "Checked an address change with the ATO",
    "demographics.address_submit": "Sent an address change to the ATO",
    "demographics.address_bulk": "Started a bulk address change",
    "demographics.bank_propose": "Proposed a bank account change",
    "demographics.bank_approve": "Approved a bank account change",
    "demographics.bank_expire": "A bank account change expired unapproved",
    "demographics.bank_callback": "Called the client back about a bank change",
    "demographics.bank_notify": "Told the client about a bank change",
    "demographics.bank_notify_missing": "Could not tell the client about a bank change (no contact)",
    "demographics.bank_validate_proposed": "The ATO accepted a bank change's check",
    "demographics.bank_validate_refused": "The ATO refused a bank change's check",
    "demographics.bank_submit_accepted": "The ATO accepted a bank change",
    "demographics.bank_submit_refused": "The ATO refused a bank change",
    "demographics.bank_approve_refused": "A bank change's approval was refused",
    "demographics.bank_propose_refused": "A bank change's proposal was refused",
    "demographics.profile_validate": "Asked the ATO to check a change of details or contact",
    "demographics.profile_submit": "Sent a change of details or contact to the ATO",
    # Communications
    "communications.sync_started": "Started a letters sync",
    "communications.sync_resumed": "Resumed a letters sync",
    "communications.synced": "Finished a letters sync",
    "communications.sync_failed": "A letters sync stopped",
    "communications.letters_changed": "Changed letters' state",
    "communications.letters_returned": "Returned letters to the inbox",
    "communications.client_told": "Told a client about a letter",
    "communications.document_opened": "Opened a letter's document",
    "communications.document_refetch": "Fetched a letter's document again",
    "communications.document_failed": "A letter's document could not be fetched",
    "communications.preferences_asked": "Asked the ATO for communication preferences",
    "communications.authority_recorded": "Recorded a client's authorisation for letters to go to the practice",
    "communications.preference_validate": "Checked a change of communication preference with the ATO",
    "communications.preference_submit": "Submitted a change of communication preference",
    "communications.preference_bulk": "Changed communication preferences for many clients",
    "communications.preference_bulk_resumed": "Tried a bulk change of communication preferences again",
    "communications.coverage_exported": "Exported where the ATO sends each client's letters",
    # Superannuation
    "superannuation.fund_created": "Added a super fund",
    "superannuation.fund_updated": "Changed a super fund",
    "superannuation.import_uploaded": "Uploaded a member file",
    "superannuation.imported": "Imported a member file",
    "superannuation.members_exported": "Exported a fund's members",
    "superannuation.member_added": "Added a member account",
    "superannuation.member_changed": "Changed a member account",
    "superannuation.member_closed": "Closed a member account",
    "superannuation.member_reopened": "Reopened a member account",
    "superannuation.tfn_revealed": "Viewed a member's full TFN",
    "superannuation.tfn_reveal_refused": "A member's full TFN was refused",
    "superannuation.tfn_corrected": "Applied the TFN the ATO supplied",
    "superannuation.foundation_started": "Started a foundation data load",
    "superannuation.realtime_started": "Sent real-time member events",
    "superannuation.resubmitted": "Resubmitted corrected transactions",
    "superannuation.step_recorded": "Recorded a reasonable step",
    "superannuation.evidence_downloaded": "Downloaded a step's evidence",
    "superannuation.extension_recorded": "Recorded more time agreed by the ATO",
    "superannuation.remediated": "Recorded the remediation of a different account holder",
    "superannuation.item_resolved": "Resolved a worklist item",
    # The gateway
    "gateway.console_viewed": "Viewed the ATO message log",
    "gateway.message_viewed": "Viewed an ATO message",
    "credential.imported": "Imported a machine credential",
    "credential.selected": "Chose the machine credential to sign with",
    "ato.message_queued": "Queued a message to the ATO",
    "ato.message_resent": "Resent a message to the ATO",
    "ato.message_done": "The ATO answered a message",
    "ato.message_failed": "A message to the ATO failed",
    "ato.message_dead": "Gave up on a message to the ATO",
    "ato.message_retry": "A message to the ATO will be retried",
    "ato.message_awaiting": "A message reached the ATO; its answer is awaited",
}


def event_in_words(action: str) -> str:
    """What an audit event's code says, as a person would say it."""
    words = EVENT_WORDS.get(action)
    if words is not None:
        return words
    area, _, what = action.partition(".")
    return f"{area.replace('_', ' ').capitalize()}: {what.replace('_', ' ')}" if what else action.replace("_", " ")


def actions_matching(text: str) -> list[str]:
    """The codes whose words contain the text, so that the search finds "deactivated" as it is shown."""
    needle = text.lower()
    return [code for code, words in EVENT_WORDS.items() if needle in words.lower()]
