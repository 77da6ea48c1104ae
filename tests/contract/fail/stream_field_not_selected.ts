// expect: TS2339 Property 'done' does not exist on type '{ id: number; title: string; }'.
import type { Drizzle } from "drizzle-gateway-client";
import { typed } from "../generated/todo.js";

declare const dz: Drizzle;
for await (const todo of typed(dz).todos.search({ q: "milk" }, { fields: ["id", "title"] as const })) {
  console.log(todo.done);
}
