// gRPC server reflection (@grpc/reflection, v1 and v1alpha) for the admin
// port: grpcurl and similar tools list and call its services without the
// .proto files. Descriptors come from the generated code (proto/gen) and
// from grpc-health-check's health.proto.
import type * as grpc from "@grpc/grpc-js";
import { type DescFile, type DescService, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { protoPath as healthProtoPath } from "grpc-health-check";

/** Adds reflection of `services` (with the files they need) and of grpc.health.v1 to `server`. */
export function addReflection(server: grpc.Server, services: readonly DescService[]): void {
  const files = new Map<string, Uint8Array>();
  const add = (f: DescFile): void => {
    if (files.has(f.proto.name)) return;
    files.set(f.proto.name, toBinary(FileDescriptorProtoSchema, f.proto));
    f.dependencies.forEach(add);
  };
  services.forEach((s) => add(s.file));
  // ReflectionService reads only each definition's fileDescriptorProtos (and takes its own proto-loader's types).
  const definitions = { ...loadSync(healthProtoPath), bkv: { fileDescriptorProtos: [...files.values()] } };
  new ReflectionService(definitions as unknown as ConstructorParameters<typeof ReflectionService>[0]).addToServer(server);
}
