"""Following feeds, article pages, sitemaps and folders: polled on a schedule, their new articles indexed."""
