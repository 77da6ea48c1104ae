// expect: TS2339 Property 'title' does not exist on type '{ id: number; }'.
import type { Drizzle } from "drizzle-gateway-client";
import { typed } from "../generated/todo.js";

declare const dz: Drizzle;
const todo = await typed(dz).todos.get({ id: 1 }, { fields: ["id"] as const });
console.log(todo.title);
