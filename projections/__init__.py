"""Read models rebuilt from the signed events (issue 4): records, grades, lists, queues."""
