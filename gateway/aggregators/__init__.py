"""One module per aggregator: its form fields, status words and error codes stop here."""
