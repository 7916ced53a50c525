"""Notifications to members: templates per event and channel (inherited down the org
tree), the in-app inbox, SMS and WeChat subscribe messages delivered on the task queue
under per-member daily caps and quiet hours, activity reminders, and reviewed broadcasts."""
