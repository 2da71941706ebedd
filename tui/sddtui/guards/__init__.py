"""Check model answers and streams against the spec and the task, and turn findings into feedback.

The entry points are `sddtui.guards.check.check_proposal`, `sddtui.guards.stream.StreamWatcher`
and `sddtui.guards.feedback.feedback_prompt`. This package file imports none of them, because
edits.model imports guards.model and the checks import edits.
"""
