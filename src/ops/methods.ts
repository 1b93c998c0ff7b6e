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
import { indexSelect } from './index-select.js';
import {
  broadcastTo,
  narrow,
  pad,
  permute,
  slice,
  transpose,
} from './layout.js';
import {
  argmax,
  argmin,
  max,
  mean,
  min,
  sum,
  type ReduceOptions,
} from './reduce.js';
import { logSoftmax, softmax } from './softmax.js';
import { reshape, squeeze, unsqueeze } from './view.js';

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
    /** max(this, axes, options), like torch.amax. */
    max(axes?: Axes, options?: ReduceOptions): Tensor;
    /** min(this, axes, options), like torch.amin. */
    min(axes?: Axes, options?: ReduceOptions): Tensor;
    /** argmax(this, axis, options). */
    argmax(axis: number, options?: ReduceOptions): Tensor;
    /** argmin(this, axis, options). */
    argmin(axis: number, options?: ReduceOptions): Tensor;
    /** softmax(this, axis). */
    softmax(axis: number): Tensor;
    /** logSoftmax(this, axis). */
    logSoftmax(axis: number): Tensor;
    /** permute(this, dims). */
    permute(dims: readonly number[]): Tensor;
    /** transpose(this, a, b). */
    transpose(a: number, b: number): Tensor;
    /** slice(this, starts, ends). */
    slice(starts: readonly number[], ends: readonly number[]): Tensor;
    /** narrow(this, axis, start, length). */
    narrow(axis: number, start: number, length: number): Tensor;
    /** pad(this, pads, value). */
    pad(pads: readonly (readonly number[])[], value?: number): Tensor;
    /** broadcastTo(this, shape). */
    broadcastTo(shape: readonly number[]): Tensor;
    /** indexSelect(this, axis, indices). */
    indexSelect(axis: number, indices: Tensor | ArrayLike<number>): Tensor;
    /** squeeze(this, axes). */
    squeeze(axes?: Axes): Tensor;
    /** unsqueeze(this, axis). */
    unsqueeze(axis: number): Tensor;
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
  max(axes?: Axes, options?: ReduceOptions) {
    return max(this, axes, options);
  },
  min(axes?: Axes, options?: ReduceOptions) {
    return min(this, axes, options);
  },
  argmax(axis: number, options?: ReduceOptions) {
    return argmax(this, axis, options);
  },
  argmin(axis: number, options?: ReduceOptions) {
    return argmin(this, axis, options);
  },
  softmax(axis: number) {
    return softmax(this, axis);
  },
  logSoftmax(axis: number) {
    return logSoftmax(this, axis);
  },
  permute(dims: readonly number[]) {
    return permute(this, dims);
  },
  transpose(a: number, b: number) {
    return transpose(this, a, b);
  },
  slice(starts: readonly number[], ends: readonly number[]) {
    return slice(this, starts, ends);
  },
  narrow(axis: number, start: number, length: number) {
    return narrow(this, axis, start, length);
  },
  pad(pads: readonly (readonly number[])[], value?: number) {
    return pad(this, pads, value);
  },
  broadcastTo(shape: readonly number[]) {
    return broadcastTo(this, shape);
  },
  indexSelect(axis: number, indices: Tensor | ArrayLike<number>) {
    return indexSelect(this, axis, indices);
  },
  squeeze(axes?: Axes) {
    return squeeze(this, axes);
  },
  unsqueeze(axis: number) {
    return unsqueeze(this, axis);
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
