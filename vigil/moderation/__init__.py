"""Real-time moderation: ``vigil serve`` scores posts online with the champion's cascade."""
