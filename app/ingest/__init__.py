"""Document ingestion: PDFs, text and chat exports into one normalized :class:`Document`."""
