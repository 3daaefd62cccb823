/**
 * A small ONNX graph builder: nodes, initializers (weights) and the graph's inputs and outputs, encoded to a
 * `ModelProto` by protobufjs from the descriptor in `schema.ts`. Browser-safe.
 * @internal
 * @module
 */
import protobuf from 'protobufjs/light.js';
import { ATTRIBUTE_TYPE, ONNX_FLOAT, ONNX_INT64, ONNX_SCHEMA } from './schema';

/** An attribute value: a number is an int unless marked as a float. */
export type AttributeValue = { int: number } | { float: number } | { ints: number[] } | { floats: number[] } | { string: string };

interface AttributeJson {
  name: string;
  type: number;
  i?: number;
  f?: number;
  ints?: number[];
  floats?: number[];
  s?: Uint8Array;
}

interface NodeJson {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  attribute: AttributeJson[];
}

interface TensorJson {
  name: string;
  dims: number[];
  data_type: number;
  raw_data?: Uint8Array;
  int64_data?: number[];
}

/** A graph input or output: name and shape, `string` dimensions being symbolic (e.g. `"batch"`). */
export interface GraphValue {
  name: string;
  shape: (number | string)[];
}

/** What {@link OnnxGraph.encode} writes besides the graph. */
export interface ModelInfo {
  producerName: string;
  producerVersion: string;
  graphName: string;
  docString: string;
  /** Opset of the default domain. */
  opset: number;
  /** IR version of the file. */
  irVersion: number;
  metadata: Record<string, string>;
}

let modelType: protobuf.Type | undefined;
function modelProto(): protobuf.Type {
  modelType ??= protobuf.Root.fromJSON(ONNX_SCHEMA as unknown as protobuf.INamespace).lookupType('onnx.ModelProto');
  return modelType;
}

/** Little-endian bytes of float32 values (ONNX `raw_data` is little-endian whatever the platform). */
function floatBytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return out;
}

function attribute(name: string, value: AttributeValue): AttributeJson {
  if ('int' in value) return { name, type: ATTRIBUTE_TYPE.INT, i: value.int };
  if ('float' in value) return { name, type: ATTRIBUTE_TYPE.FLOAT, f: value.float };
  if ('ints' in value) return { name, type: ATTRIBUTE_TYPE.INTS, ints: value.ints };
  if ('floats' in value) return { name, type: ATTRIBUTE_TYPE.FLOATS, floats: value.floats };
  return { name, type: ATTRIBUTE_TYPE.STRING, s: new TextEncoder().encode(value.string) };
}

function valueInfo(v: GraphValue): object {
  const dim = v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d }));
  return { name: v.name, type: { tensor_type: { elem_type: ONNX_FLOAT, shape: { dim } } } };
}

/** Builds one ONNX graph. Value names are made unique; every method returns the name of what it added. */
export class OnnxGraph {
  private readonly nodes: NodeJson[] = [];
  private readonly initializers: TensorJson[] = [];
  private readonly used = new Set<string>();
  /** Float32 weight bytes so far (for reports). */
  weightBytes = 0;

  /** A fresh value name derived from `base`. */
  name(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_./:-]/g, '_') || 'v';
    let name = clean;
    for (let i = 1; this.used.has(name); i++) name = `${clean}_${i}`;
    this.used.add(name);
    return name;
  }

  /** Reserves a name given from outside (graph inputs). */
  reserve(name: string): string {
    this.used.add(name);
    return name;
  }

  /** A float32 initializer of shape `dims`. */
  floats(base: string, dims: number[], values: Float32Array | number[]): string {
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) throw new Error(`ONNX initializer ${base}: ${data.length} values for shape [${dims.join(', ')}].`);
    const name = this.name(base);
    this.initializers.push({ name, dims, data_type: ONNX_FLOAT, raw_data: floatBytes(data) });
    this.weightBytes += data.length * 4;
    return name;
  }

  /** An int64 initializer (shapes, pads). */
  ints(base: string, values: number[]): string {
    const name = this.name(base);
    this.initializers.push({ name, dims: [values.length], data_type: ONNX_INT64, int64_data: values });
    return name;
  }

  /** Adds a node with one output and returns that output's name. */
  node(op: string, inputs: string[], base: string, attributes: Record<string, AttributeValue> = {}): string {
    const output = this.name(base);
    this.nodes.push({
      input: inputs,
      output: [output],
      name: output,
      op_type: op,
      attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }

  /** Number of nodes so far. */
  get size(): number {
    return this.nodes.length;
  }

  /** Encodes the model: `inputs` and `outputs` name values of this graph. */
  encode(inputs: GraphValue[], outputs: GraphValue[], info: ModelInfo): Uint8Array {
    const type = modelProto();
    const model = {
      ir_version: info.irVersion,
      producer_name: info.producerName,
      producer_version: info.producerVersion,
      doc_string: info.docString,
      opset_import: [{ domain: '', version: info.opset }],
      metadata_props: Object.entries(info.metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: info.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: inputs.map(valueInfo),
        output: outputs.map(valueInfo),
      },
    };
    const problem = type.verify(model);
    if (problem) throw new Error(`ONNX model does not match the schema: ${problem}`);
    return type.encode(type.fromObject(model)).finish();
  }
}
