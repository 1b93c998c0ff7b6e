// Tensor methods that mirror the op functions: x.add(y) is add(x, y).
// TypeScript declaration merging adds the signatures to the Tensor class;
// the prototype assignments below add the implementations. src/index.ts
// imports this module for its side effects.

import { Tensor } from '../tensor.js';
import {
  abs,
  add,
  clamp,
  div,
  eq,
  exp,
  ge,
  gelu,
  gt,
  le,
  leakyRelu,
  log,
  lt,
  maximum,
  minimum,
  mul,
  ne,
  neg,
  pow,
  relu,
  scale,
  sigmoid,
  sqrt,
  sub,
  tanh,
  where,
  type Operand,
} from './elementwise.js';
import { mean, sum, type ReduceOptions } from './reduce.js';
import { reshape } from './view.js';

type Axes = number | readonly number[];

declare module '../tensor.js' {
  interface Tensor {
    /** add(this, other). */
    add(other: Operand): Tensor;
    /** sub(this, other). */
    sub(other: Operand): Tensor;
    /** mul(this, other). */
    mul(other: Operand): Tensor;
    /** div(this, other). */
    div(other: Operand): Tensor;
    /** pow(this, exponent). */
    pow(exponent: Operand): Tensor;
    /** maximum(this, other). */
    maximum(other: Operand): Tensor;
    /** minimum(this, other). */
    minimum(other: Operand): Tensor;
    /** eq(this, other). */
    eq(other: Operand): Tensor;
    /** ne(this, other). */
    ne(other: Operand): Tensor;
    /** lt(this, other). */
    lt(other: Operand): Tensor;
    /** le(this, other). */
    le(other: Operand): Tensor;
    /** gt(this, other). */
    gt(other: Operand): Tensor;
    /** ge(this, other). */
    ge(other: Operand): Tensor;
    /** where(condition, this, other), as PyTorch's Tensor.where. */
    where(condition: Tensor, other: Operand): Tensor;
    /** neg(this). */
    neg(): Tensor;
    /** abs(this). */
    abs(): Tensor;
    /** exp(this). */
    exp(): Tensor;
    /** log(this). */
    log(): Tensor;
    /** sqrt(this). */
    sqrt(): Tensor;
    /** scale(this, factor). */
    scale(factor: number): Tensor;
    /** clamp(this, min, max). */
    clamp(min?: number | null, max?: number | null): Tensor;
    /** relu(this). */
    relu(): Tensor;
    /** leakyRelu(this, slope). */
    leakyRelu(slope?: number): Tensor;
    /** gelu(this). */
    gelu(): Tensor;
    /** sigmoid(this). */
    sigmoid(): Tensor;
    /** tanh(this). */
    tanh(): Tensor;
    /** sum(this, axes, options). */
    sum(axes?: Axes, options?: ReduceOptions): Tensor;
    /** mean(this, axes, options). */
    mean(axes?: Axes, options?: ReduceOptions): Tensor;
    /** reshape(this, shape). */
    reshape(shape: readonly number[]): Tensor;
  }
}

const methods: ThisType<Tensor> & Partial<Tensor> = {
  add(other: Operand) {
    return add(this, other);
  },
  sub(other: Operand) {
    return sub(this, other);
  },
  mul(other: Operand) {
    return mul(this, other);
  },
  div(other: Operand) {
    return div(this, other);
  },
  pow(exponent: Operand) {
    return pow(this, exponent);
  },
  maximum(other: Operand) {
    return maximum(this, other);
  },
  minimum(other: Operand) {
    return minimum(this, other);
  },
  eq(other: Operand) {
    return eq(this, other);
  },
  ne(other: Operand) {
    return ne(this, other);
  },
  lt(other: Operand) {
    return lt(this, other);
  },
  le(other: Operand) {
    return le(this, other);
  },
  gt(other: Operand) {
    return gt(this, other);
  },
  ge(other: Operand) {
    return ge(this, other);
  },
  where(condition: Tensor, other: Operand) {
    return where(condition, this, other);
  },
  neg() {
    return neg(this);
  },
  abs() {
    return abs(this);
  },
  exp() {
    return exp(this);
  },
  log() {
    return log(this);
  },
  sqrt() {
    return sqrt(this);
  },
  scale(factor: number) {
    return scale(this, factor);
  },
  clamp(min?: number | null, max?: number | null) {
    return clamp(this, min, max);
  },
  relu() {
    return relu(this);
  },
  leakyRelu(slope?: number) {
    return leakyRelu(this, slope);
  },
  gelu() {
    return gelu(this);
  },
  sigmoid() {
    return sigmoid(this);
  },
  tanh() {
    return tanh(this);
  },
  sum(axes?: Axes, options?: ReduceOptions) {
    return sum(this, axes, options);
  },
  mean(axes?: Axes, options?: ReduceOptions) {
    return mean(this, axes, options);
  },
  reshape(shape: readonly number[]) {
    return reshape(this, shape);
  },
};

// Non-enumerable, like methods declared in the class body.
for (const [name, method] of Object.entries(methods)) {
  Object.defineProperty(Tensor.prototype, name, {
    value: method,
    writable: true,
    configurable: true,
  });
}
