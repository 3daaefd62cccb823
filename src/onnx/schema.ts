/**
 * The ONNX messages the exporter writes, as a protobufjs JSON descriptor (`Root.fromJSON`): protobufjs does all
 * the wire encoding; this file only declares the message types.
 *
 * Field names, types and numbers are those of ONNX's `onnx/onnx.proto` (https://github.com/onnx/onnx, Apache-2.0),
 * the interface every ONNX reader implements. Only the fields the exporter sets are declared (unset optional fields
 * are simply absent on the wire). All 67 declared fields and enum values were compared, name, number, type and
 * label, with `onnx/onnx.proto` at onnx/onnx commit f7546912 (2026-08-22, IR version 14): no difference.
 * `test/unit/onnx-export.test.ts` runs every exported file in onnxruntime.
 * @internal
 * @module
 */

/** Field declaration of a protobufjs JSON descriptor. */
interface FieldJson {
  type: string;
  id: number;
  rule?: 'repeated';
  options?: { packed: boolean };
}

type Fields = Record<string, FieldJson>;

const repeated = (type: string, id: number): FieldJson => ({ type, id, rule: 'repeated' });
const one = (type: string, id: number): FieldJson => ({ type, id });

const attributeProto: Fields = {
  name: one('string', 1),
  type: one('AttributeType', 20),
  f: one('float', 2),
  i: one('int64', 3),
  s: one('bytes', 4),
  t: one('TensorProto', 5),
  floats: repeated('float', 7),
  ints: repeated('int64', 8),
};

const tensorProto: Fields = {
  dims: repeated('int64', 1),
  data_type: one('int32', 2),
  float_data: { ...repeated('float', 4), options: { packed: true } },
  int64_data: { ...repeated('int64', 7), options: { packed: true } },
  name: one('string', 8),
  raw_data: one('bytes', 9),
  doc_string: one('string', 12),
};

/** The descriptor, in `Root.fromJSON`'s format (package `onnx`). @internal */
export const ONNX_SCHEMA = {
  nested: {
    onnx: {
      nested: {
        AttributeProto: {
          fields: attributeProto,
          nested: {
            AttributeType: { values: { UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } },
          },
        },
        ValueInfoProto: { fields: { name: one('string', 1), type: one('TypeProto', 2), doc_string: one('string', 3) } },
        NodeProto: {
          fields: {
            input: repeated('string', 1),
            output: repeated('string', 2),
            name: one('string', 3),
            op_type: one('string', 4),
            attribute: repeated('AttributeProto', 5),
            doc_string: one('string', 6),
            domain: one('string', 7),
          },
        },
        ModelProto: {
          fields: {
            ir_version: one('int64', 1),
            producer_name: one('string', 2),
            producer_version: one('string', 3),
            domain: one('string', 4),
            model_version: one('int64', 5),
            doc_string: one('string', 6),
            graph: one('GraphProto', 7),
            opset_import: repeated('OperatorSetIdProto', 8),
            metadata_props: repeated('StringStringEntryProto', 14),
          },
        },
        StringStringEntryProto: { fields: { key: one('string', 1), value: one('string', 2) } },
        GraphProto: {
          fields: {
            node: repeated('NodeProto', 1),
            name: one('string', 2),
            initializer: repeated('TensorProto', 5),
            doc_string: one('string', 10),
            input: repeated('ValueInfoProto', 11),
            output: repeated('ValueInfoProto', 12),
          },
        },
        TensorProto: {
          fields: tensorProto,
          nested: { DataType: { values: { UNDEFINED: 0, FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } } },
        },
        TensorShapeProto: {
          fields: { dim: repeated('Dimension', 1) },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ['dim_value', 'dim_param'] } },
              fields: { dim_value: one('int64', 1), dim_param: one('string', 2), denotation: one('string', 3) },
            },
          },
        },
        TypeProto: {
          oneofs: { value: { oneof: ['tensor_type'] } },
          fields: { tensor_type: one('Tensor', 1), denotation: one('string', 6) },
          nested: { Tensor: { fields: { elem_type: one('int32', 1), shape: one('TensorShapeProto', 2) } } },
        },
        OperatorSetIdProto: { fields: { domain: one('string', 1), version: one('int64', 2) } },
      },
    },
  },
} as const;

/** `TensorProto.DataType.FLOAT`. @internal */
export const ONNX_FLOAT = 1;
/** `TensorProto.DataType.INT64`. @internal */
export const ONNX_INT64 = 7;
/** `AttributeProto.AttributeType` values the exporter writes. @internal */
export const ATTRIBUTE_TYPE = Object.freeze({ FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 });
