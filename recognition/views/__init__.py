"""Browser pages, one module per area: the dashboard and uploads, a photo or video's page, the
corrections made on faces, and people. Session auth, owner-scoped (another user's things answer
404); views are thin and call services, whose refusals they show as messages.

Images come from the API's owner-checked endpoints (file, thumbnail, face crop), which accept
the same session, so the pages serve no pixels of their own.
"""
