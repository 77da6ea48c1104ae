// expect: TS2322 Type 'number' is not assignable to type 'string'.
import type { Drizzle } from "drizzle-gateway-client";
import { typed } from "../generated/todo.js";

declare const dz: Drizzle;
await typed(dz).todos.create({ title: 42 });
