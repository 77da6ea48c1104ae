// expect: TS2339 Property 'title' does not exist on type 'AsyncIterableIterator<Todo>'.
import type { Drizzle } from "drizzle-gateway-client";
import { typed } from "../generated/todo.js";

declare const dz: Drizzle;
const todo = await typed(dz).todos.search({ q: "milk" });
console.log(todo.title);
