"""Landing-file ingestion: feed contracts, readers, the loader, the organisation settings, privacy and the mapping
of other systems' exports (export_mapping). The demo data generator is the `demo` package."""
