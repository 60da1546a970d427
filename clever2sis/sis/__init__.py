"""The Canvas CSV side: settings, template rendering, one builder per file, validation, writer and zip."""
