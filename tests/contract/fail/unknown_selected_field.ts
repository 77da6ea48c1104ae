// expect: TS2322 Type '"colour"' is not assignable to type 'TodoPath'.
import type { Drizzle } from "drizzle-gateway-client";
import { typed } from "../generated/todo.js";

declare const dz: Drizzle;
await typed(dz).todos.get({ id: 1 }, { fields: ["id", "colour"] as const });
