"""The contract layer: resources, actions, topics and permissions, and their descriptions.

``__schema__`` (`introspection`), its per-user view (`visibility`), AsyncAPI
(`asyncapi`) and TypeScript (`typescript`) all come from the same components.
Imports the wire and schema layers.
"""
