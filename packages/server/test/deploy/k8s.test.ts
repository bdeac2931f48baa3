import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config.ts';
import { parseNodeUrl } from '../../src/storage/node-spec.ts';

/**
 * No Kubernetes API server runs here, so the manifests are checked offline the two ways an API
 * server would reject them: against the Kubernetes OpenAPI schemas (kubernetes-models' validators:
 * types, enums, required fields) and for unknown fields, which those validators let through and a
 * strict `kubectl apply` refuses. Unknown fields are found by the TypeScript compiler: each
 * document becomes an object literal typed as its kind's interface, and excess-property checking
 * flags any key the schema does not declare, at any depth.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const dir = path.join(root, 'deploy/k8s');
const require = createRequire(import.meta.url);

interface Manifest {
  file: string;
  doc: {
    apiVersion: string;
    kind: string;
    metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  } & Record<
    string,
    // biome-ignore lint/suspicious/noExplicitAny: manifests are free-form YAML until validated
    any
  >;
}

/** apiVersion/kind → the kubernetes-models module and the interface its class implements. */
const MODELS: Record<string, { module: string; name: string }> = {
  'v1/Namespace': { module: 'kubernetes-models/v1/Namespace', name: 'Namespace' },
  'v1/ConfigMap': { module: 'kubernetes-models/v1/ConfigMap', name: 'ConfigMap' },
  'v1/Secret': { module: 'kubernetes-models/v1/Secret', name: 'Secret' },
  'v1/Service': { module: 'kubernetes-models/v1/Service', name: 'Service' },
  'apps/v1/Deployment': { module: 'kubernetes-models/apps/v1/Deployment', name: 'Deployment' },
  'networking.k8s.io/v1/Ingress': {
    module: 'kubernetes-models/networking.k8s.io/v1/Ingress',
    name: 'Ingress',
  },
  'policy/v1/PodDisruptionBudget': {
    module: 'kubernetes-models/policy/v1/PodDisruptionBudget',
    name: 'PodDisruptionBudget',
  },
};

function load(): { manifests: Manifest[]; kustomization: Record<string, unknown> } {
  const manifests: Manifest[] = [];
  let kustomization: Record<string, unknown> = {};
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.yaml'))) {
    for (const document of parseAllDocuments(readFileSync(path.join(dir, file), 'utf8'))) {
      expect(document.errors, file).toEqual([]);
      const doc = document.toJS() as Manifest['doc'];
      if (doc.kind === 'Kustomization') kustomization = doc;
      else manifests.push({ file, doc });
    }
  }
  return { manifests, kustomization };
}

function modelOf(doc: Manifest['doc']): { module: string; name: string } {
  const model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!model) throw new Error(`no schema known for ${doc.apiVersion} ${doc.kind}`);
  return model;
}

/** Schema errors (types, enums, required fields) of one document, as kubernetes-models reports them. */
function schemaErrors(doc: Manifest['doc']): string[] {
  const model = modelOf(doc);
  const Model = require(model.module)[model.name] as new (data: unknown) => { validate(): void };
  try {
    new Model(doc).validate();
    return [];
  } catch (error) {
    return [(error as Error).message];
  }
}

/** Every key in `docs` that its kind's schema does not declare, with the compiler's location. */
function unknownFields(docs: Manifest['doc'][]): string[] {
  const fileName = path.join(root, 'packages/server/test/deploy/__k8s_manifests__.ts');
  const lines: string[] = [];
  docs.forEach((doc, i) => {
    const model = modelOf(doc);
    lines.push(`import type { I${model.name} as T${i} } from '${model.module}';`);
    lines.push(`export const doc${i}: T${i} = ${JSON.stringify(doc, null, 1)};`);
  });
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (name) => (name === fileName ? source : readFile(name));
  host.fileExists = (name) => name === fileName || ts.sys.fileExists(name);
  host.getSourceFile = (name, version) =>
    name === fileName ? ts.createSourceFile(name, source, version) : getSourceFile(name, version);
  const program = ts.createProgram([fileName], options, host);
  const sourceFile = program.getSourceFile(fileName)!;
  return ts.getPreEmitDiagnostics(program, sourceFile).map((d) => {
    const { line } = sourceFile.getLineAndCharacterOfPosition(d.start ?? 0);
    return `${ts.flattenDiagnosticMessageText(d.messageText, '\n')} (near: ${source.split('\n')[line]?.trim()})`;
  });
}

describe('deploy/k8s', () => {
  const { manifests, kustomization } = load();
  const byKind = (kind: string) => manifests.filter(({ doc }) => doc.kind === kind).map(({ doc }) => doc);
  const deployment = byKind('Deployment')[0]!;
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const configMap = byKind('ConfigMap')[0]!;
  const secret = byKind('Secret')[0]!;
  const env: Record<string, string> = { ...configMap.data, ...secret.stringData };

  it('lists every manifest in the kustomization, each once', () => {
    const files = readdirSync(dir).filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml');
    expect([...(kustomization.resources as string[])].sort()).toEqual(files.sort());
    expect(kustomization.namespace).toBe(byKind('Namespace')[0]!.metadata.name);
    // The image name the Deployment uses is the one kustomize rewrites to the pushed image.
    expect((kustomization.images as { name: string }[]).map((image) => image.name)).toContain(
      container.image,
    );
  });

  it('validates every document against the Kubernetes schemas', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(8);
    for (const { file, doc } of manifests) expect(schemaErrors(doc), `${file}: ${doc.kind}`).toEqual([]);
  });

  it('has no field the Kubernetes schemas do not declare', () => {
    expect(unknownFields(manifests.map(({ doc }) => doc))).toEqual([]);
  });

  it('catches a misspelt field and a wrong type (the checks can fail)', () => {
    const typo = structuredClone(deployment);
    typo.spec.template.spec.containers[0].readinesProbe = container.readinessProbe;
    expect(unknownFields([typo]).join('\n')).toMatch(/readinesProbe/);
    const wrongType = structuredClone(deployment);
    wrongType.spec.replicas = 'two';
    expect(schemaErrors(wrongType).join('\n')).toMatch(/replicas/);
  });

  it('runs two replicas with health probes on the routes the app serves', () => {
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    const portNames = container.ports.map((port: { name: string }) => port.name);
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      expect(portNames).toContain(container[probe].httpGet.port);
    }
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    const routes = readFileSync(path.join(root, 'packages/server/src/routes/health.ts'), 'utf8');
    expect(routes).toContain("'/healthz'");
    expect(routes).toContain("'/readyz'");
    expect(container.ports[0].containerPort).toBe(Number(env.DFS_PORT));
  });

  it('gives the app a configuration it accepts, shared by every replica', () => {
    const config = loadConfig(env);
    // Two replicas need one database server: an SQLite file would be one per pod.
    expect(config.dbUrl).toMatch(/^mysql:\/\//);
    expect(config.host).toBe('0.0.0.0');
    for (const url of config.nodeUrls) expect(() => parseNodeUrl(url)).not.toThrow();
    // Each replica generating its own secret would break share passwords across pods.
    expect(env.DFS_SECRET).toBeDefined();
    const mysqlHost = new URL(config.dbUrl).hostname;
    expect(byKind('Service').map((service) => service.metadata.name)).toContain(mysqlHost);
    const sources = container.envFrom.map(
      (from: { configMapRef?: { name: string }; secretRef?: { name: string } }) =>
        from.configMapRef?.name ?? from.secretRef?.name,
    );
    expect(sources.sort()).toEqual([configMap.metadata.name, secret.metadata.name].sort());
  });

  it('writes only to mounted scratch volumes under a read-only root filesystem', () => {
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    const mounts = container.volumeMounts.map((mount: { mountPath: string }) => mount.mountPath);
    expect(mounts).toContain(env.DFS_DATA_DIR);
    expect(mounts).toContain('/tmp');
    const volumes = pod.volumes.map((volume: { name: string }) => volume.name);
    for (const mount of container.volumeMounts) expect(volumes).toContain(mount.name);
    // The container starts what the image starts: the Dockerfile's last WORKDIR and CMD.
    const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    const workdir = [...dockerfile.matchAll(/^WORKDIR (.+)$/gm)].pop()?.[1];
    const cmd = JSON.parse(/^CMD (.+)$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
    expect(container.workingDir).toBe(workdir);
    expect(container.command).toEqual(cmd);
    // …which the image builds: the server bundle from the package's build script.
    expect(dockerfile).toMatch(/pnpm --filter @dfs\/server build/);
    expect(cmd.at(-1)).toBe('dist/main.js');
  });

  it('routes the Ingress to the Service and the Service to the pods', () => {
    const service = byKind('Service').find((s) => s.metadata.name === 'dfs')!;
    const podLabels = deployment.spec.template.metadata.labels;
    expect(podLabels).toMatchObject(service.spec.selector);
    expect(podLabels).toMatchObject(deployment.spec.selector.matchLabels);
    expect(podLabels).toMatchObject(byKind('PodDisruptionBudget')[0]!.spec.selector.matchLabels);
    expect(container.ports.map((port: { name: string }) => port.name)).toContain(
      service.spec.ports[0].targetPort,
    );
    const ingress = byKind('Ingress')[0]!;
    const backend = ingress.spec.rules[0].http.paths[0].backend.service;
    expect(backend.name).toBe(service.metadata.name);
    expect(service.spec.ports.map((port: { name: string }) => port.name)).toContain(backend.port.name);
  });

  it('leaves the body limit to the app and streams long requests through the Ingress', () => {
    const annotations = byKind('Ingress')[0]!.metadata.annotations as Record<string, string>;
    // One limit in one place, the app's per-route limits: WebDAV and tus take whole files.
    expect(annotations['nginx.ingress.kubernetes.io/proxy-body-size']).toBe('0');
    expect(annotations['nginx.ingress.kubernetes.io/proxy-request-buffering']).toBe('off');
    // A WebDAV PUT of a whole file answers once it is stored; downloads stream for long.
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThanOrEqual(
      3600,
    );
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-send-timeout'])).toBeGreaterThanOrEqual(
      3600,
    );
  });
});
