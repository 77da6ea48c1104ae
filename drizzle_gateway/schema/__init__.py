"""The schema layer: field selection, schemas compiled into loaders and dumpers, typed publication.

The one module that reads marshmallow's protected members is `marshmallow_internals`.
Imports the wire layer only.
"""
