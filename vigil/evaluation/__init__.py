"""Online evaluation: control and candidate side by side, measured on an importance sample of
impressions labeled by moderators (issue 22). See docs/online_eval.md."""
