// expect: TS2345 Property 'title' is missing in type '{ tags: string[]; }' but required in type 'NewTodoInput'.
import type { Drizzle } from "drizzle-gateway-client";
import { typed } from "../generated/todo.js";

declare const dz: Drizzle;
await typed(dz).todos.create({ tags: ["x"] });
