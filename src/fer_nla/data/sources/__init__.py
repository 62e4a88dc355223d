"""One reader per dataset format, each a :class:`~fer_nla.data.sources.reader.Reader` whose
``build(request, **options) -> FERDataset`` reads one checked
:class:`~fer_nla.data.sources.reader.ReadRequest` (see :mod:`fer_nla.data.registry`)."""
