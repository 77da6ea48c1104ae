// expect: TS2339 Property 'publish' does not exist on type 'TopicHandle<Todo, TodoPath>'.
import type { Drizzle } from "drizzle-gateway-client";
import { typed } from "../generated/todo.js";

declare const dz: Drizzle;
await typed(dz).topics.todos().publish({ title: "x" });
