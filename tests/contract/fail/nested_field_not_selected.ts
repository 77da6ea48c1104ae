// expect: TS2339 Property 'email' does not exist on type '{ name: string; }'.
import type { Drizzle } from "drizzle-gateway-client";
import { typed } from "../generated/todo.js";

declare const dz: Drizzle;
const todo = await typed(dz).todos.get({ id: 1 }, { fields: ["id", "owner.name"] as const });
console.log(todo.owner.email);
