"""Landing-file ingestion: feed contracts, readers, loader and the demo data generator."""
