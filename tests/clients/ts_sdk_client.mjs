// A client on the TypeScript SDK 1.x, the SDK most MCP hosts embed, against a real server.
//
//   node ts_sdk_client.mjs URL CALLS_JSON     (SCS_BEARER: a credential for the connection)
//
// Lists the tools first: callTool validates a result's structuredContent against the
// tool's outputSchema (even when isError is set) only for tools it has listed. Then makes
// each call of CALLS_JSON ([{"tool": ..., "arguments": {...}}]) and prints one JSON object:
// {"sdk": version, "outcomes": [...]}, an outcome being what callTool returned, or the
// error it threw ({"thrown": {code, message, data}}), and whether the SDK's own validator
// (Ajv, as callTool uses) accepts the structured content.
import { readFileSync } from 'node:fs';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';

const [url, callsJson] = process.argv.slice(2);
const sdkPackage = new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url);
const sdk = JSON.parse(readFileSync(sdkPackage, 'utf8')).version;
const bearer = process.env.SCS_BEARER;
const headers = bearer ? { Authorization: `Bearer ${bearer}` } : {};

const client = new Client({ name: 'scs-ts-sdk-test', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
const { tools } = await client.listTools();
const schemas = new Map(tools.map((tool) => [tool.name, tool.outputSchema]));
const ajv = new AjvJsonSchemaValidator();

const outcomes = [];
for (const { tool, arguments: args } of JSON.parse(callsJson)) {
  try {
    const result = await client.callTool({ name: tool, arguments: args });
    const schema = schemas.get(tool);
    const check = schema ? ajv.getValidator(schema)(result.structuredContent) : undefined;
    outcomes.push({
      tool,
      isError: result.isError === true,
      structuredContent: result.structuredContent,
      text: result.content?.[0]?.text,
      schemaValid: check?.valid ?? null,
      schemaError: check?.errorMessage ?? null,
    });
  } catch (error) {
    outcomes.push({ tool, thrown: { code: error.code, message: error.message, data: error.data } });
  }
}
await client.close();
console.log(JSON.stringify({ sdk, outcomes }));
