package esdbemu

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
)

// ServerVersion is the EventStoreDB version the emulator reports through ServerFeatures. It is
// 24.10.0 because that is the release whose behaviour the emulator reproduces (esdb-protocol-notes:
// 1 MiB MaxAppendSize, no per-event size check, an empty caught_up) and the image docker-compose
// runs. Clients that see no version (0.0.0) assume a pre-21.10 server and take older code paths.
const ServerVersion = "24.10.0"

// supportedMethods lists what the emulator serves, in the server's lower-case naming
// (KurrentDB Services/Transport/Grpc/ServerFeatures.cs). Only implemented methods are listed: a
// client that sees batchappend or persistent-subscription methods would use them and fail.
var supportedMethods = []*serverfeatures.SupportedMethod{
	{ServiceName: "event_store.client.streams.streams", MethodName: "read"},
	{ServiceName: "event_store.client.streams.streams", MethodName: "append"},
	{ServiceName: "event_store.client.streams.streams", MethodName: "delete"},
	{ServiceName: "event_store.client.streams.streams", MethodName: "tombstone"},
	{ServiceName: "event_store.client.gossip.gossip", MethodName: "read"},
	{ServiceName: "event_store.client.server_features.serverfeatures", MethodName: "getsupportedmethods"},
}

// features serves event_store.client.server_features.ServerFeatures.
type features struct {
	serverfeatures.UnimplementedServerFeaturesServer
}

func (features) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	return &serverfeatures.SupportedMethods{Methods: supportedMethods, EventStoreServerVersion: ServerVersion}, nil
}

// cluster serves event_store.client.gossip.Gossip as a one-node cluster whose only member is the
// alive leader at the emulator's own address, so esdb+discover:// and gossip-seed connection
// strings resolve to it the way they resolve to the leader of a real cluster.
type cluster struct {
	gossip.UnimplementedGossipServer
	id   uuid.UUID
	host string
	port uint32
	now  func() int64
}

func newCluster(addr string, now func() int64) (*cluster, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("esdbemu gossip address %s: %w", addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("esdbemu gossip port %s: %w", port, err)
	}
	return &cluster{id: uuid.New(), host: host, port: uint32(p), now: now}, nil
}

func (c *cluster) Read(context.Context, *shared.Empty) (*gossip.ClusterInfo, error) {
	return &gossip.ClusterInfo{Members: []*gossip.MemberInfo{{
		InstanceId:   &shared.UUID{Value: &shared.UUID_String_{String_: c.id.String()}},
		TimeStamp:    c.now(),
		State:        gossip.MemberInfo_Leader,
		IsAlive:      true,
		HttpEndPoint: &gossip.EndPoint{Address: c.host, Port: c.port},
	}}}, nil
}
