"""A todo list: resources with validated input, typed output and field selection.

Run it with ``drizzle-gateway serve examples.todo.app:gateway``.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

from marshmallow import Schema, fields, validate

from drizzle_gateway import ActionError, Gateway, Resource, Topic, action


class NewTodo(Schema):
    title = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    tags = fields.List(fields.Str(), load_default=list)


class TodoRef(Schema):
    id = fields.Int(required=True)


class TodoUpdate(Schema):
    id = fields.Int(required=True)
    title = fields.Str(validate=validate.Length(min=1, max=200))
    done = fields.Bool()


class TodoQuery(Schema):
    q = fields.Str(load_default="", metadata={"description": "text the title contains (every todo when empty)"})


class Owner(Schema):
    name = fields.Str()
    email = fields.Email()


class Todo(Schema):
    id = fields.Int()
    title = fields.Str()
    done = fields.Bool()
    tags = fields.List(fields.Str())
    owner = fields.Nested(Owner)


todo_changed = Topic("todos", Todo, description="every created or updated todo")


class Todos(Resource):
    """The shared todo list."""

    name = "todos"

    @action(input=NewTodo, output=Todo)
    async def create(self, data: dict) -> dict:
        """Add a todo; subscribers of "todos" hear about it."""
        store = self.gateway.state
        todo = {"id": next(store["ids"]), "done": False, "owner": {"name": "ada", "email": "ada@example.com"},
                **data}
        store["todos"][todo["id"]] = todo
        await self.publish(todo_changed, todo)
        return todo

    @action(output=Todo(many=True))
    async def list(self, data: dict | None) -> list[dict]:
        """Every todo, oldest first."""
        return list(self.gateway.state["todos"].values())

    @action(input=TodoRef, output=Todo)
    async def get(self, data: dict) -> dict:
        """One todo by id."""
        return self._find(data["id"])

    @action(input=TodoQuery, output=Todo)
    async def search(self, data: dict) -> AsyncIterator[dict]:
        """The todos whose title contains ``q``, oldest first, streamed one by one."""
        for todo in list(self.gateway.state["todos"].values()):
            if data["q"].lower() in todo["title"].lower():
                yield todo

    @action(input=TodoUpdate, output=Todo)
    async def update(self, data: dict) -> dict:
        """Change a todo's title or done flag."""
        todo = self._find(data["id"])
        todo.update(data)
        await self.publish(todo_changed, todo)
        return todo

    @action()
    async def watch(self, data: dict | None) -> dict:
        """Subscribe this connection to "todos" from the server side."""
        await self.subscribe(todo_changed)
        return {"watching": todo_changed.pattern}

    def _find(self, todo_id: int) -> dict:
        try:
            return self.gateway.state["todos"][todo_id]
        except KeyError:
            raise ActionError("NOT_FOUND", f"no todo with id {todo_id}", {"id": todo_id}) from None


def make_gateway() -> Gateway:
    """A fresh gateway with an empty todo list."""
    gateway = Gateway(resources=[Todos], topics=[todo_changed], title="todo example")
    gateway.state.update(ids=itertools.count(1), todos={})
    return gateway


gateway = make_gateway()
